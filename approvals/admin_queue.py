"""The approval queue's admin entry: ConfirmationRequest, shown only as the queue.

Guardian-scoped by `approve_actions` (the scope table's permission for approvals:decide);
no add, change or delete form exists: the only writes are approve/deny through the
approval services (approvals/admin_views.py)."""

from django.contrib import admin
from django.http import HttpResponseNotAllowed
from django.urls import path

from approvals import admin_review_link, admin_views
from approvals.models import ConfirmationRequest
from common.scopes import APPROVALS_DECIDE
from tenants.admin_base import WardenModelAdmin, permission_missing


class ApprovalQueueAdmin(WardenModelAdmin):
    view_scope = APPROVALS_DECIDE
    change_scope = None

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}"

        def wrap(view, method):
            def wrapper(request, *args, **kwargs):
                if not self.has_view_permission(request):
                    raise permission_missing(self.view_permission)
                if request.method != method:
                    return HttpResponseNotAllowed([method])
                return view(self, request, *args, **kwargs)

            return self.admin_site.admin_view(wrapper)

        return [
            path("", wrap(admin_views.queue_view, "GET"), name=f"{name}_changelist"),
            path(
                "bulk-deny/",
                wrap(admin_views.bulk_deny_view, "POST"),
                name=f"{name}_bulk_deny",
            ),
            path(
                "<uuid:pk>/",
                wrap(admin_review_link.linked_review_view, "GET"),
                name=f"{name}_review",
            ),
            path(
                "<uuid:pk>/email/<str:verdict>/",
                wrap(admin_review_link.email_decision_view, "GET"),
                name=f"{name}_email_decision",
            ),
            path(
                "<uuid:pk>/decide/",
                wrap(admin_views.decide_view, "POST"),
                name=f"{name}_decide",
            ),
        ]


def register(site: admin.AdminSite = admin.site) -> None:
    if not site.is_registered(ConfirmationRequest):
        site.register(ConfirmationRequest, ApprovalQueueAdmin)
