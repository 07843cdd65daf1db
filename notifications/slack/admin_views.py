"""Admin pages of the Slack integration, mounted under /admin/slack/ and wrapped like
every admin view (login, staff, CSRF):

- link/: a Slack user links itself to the logged-in Warden user, once, with the signed
  code Warden showed them in Slack (only they saw it; it lasts 15 minutes);
- preview/<request>/: the message Slack shows for a request, rendered roughly as Slack
  would, with its Block Kit JSON. Only approvers of the request's workspace see it;
  others get 404, as if it did not exist."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from approvals.confirmations import APPROVE_PERMISSION
from approvals.models import ConfirmationRequest
from common.errors import WardenError
from notifications.models import SlackIdentity
from notifications.slack import blocks, services
from tenants.selectors import workspaces_with_permission


def link_view(request):
    code = request.POST.get("code") or request.GET.get("code") or ""
    read = services.link_code_read(code)
    if request.method == "POST" and read is not None:
        try:
            services.slack_identity_link(user=request.user, code=code)
        except WardenError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, "Your Slack account is linked: buttons in Slack now act as you."
            )
        return HttpResponseRedirect(reverse("slack_link"))
    if request.method == "POST" and request.POST.get("unlink"):
        services.slack_identity_unlink(user=request.user)
        messages.success(request, "Your Slack account is unlinked.")
        return HttpResponseRedirect(reverse("slack_link"))
    context = {
        **admin.site.each_context(request),
        "title": "Link Slack",
        "code": code if read else "",
        "invalid": bool(code) and read is None,
        "slack_user": read[1] if read else "",
        "slack_team": read[0] if read else "",
        "linked": list(SlackIdentity.objects.filter(user=request.user)),
    }
    return TemplateResponse(request, "admin/notifications/slack_link.html", context)


def preview_view(request, pk):
    permitted = workspaces_with_permission(user=request.user, perm=APPROVE_PERMISSION)
    confirmation = (
        ConfirmationRequest.objects.select_related("action_request__key", "workspace")
        .filter(pk=pk, workspace__in=permitted)
        .first()
    )
    if confirmation is None:
        raise Http404("No such request.")
    content = blocks.request_blocks(confirmation, review_url=services.review_url(confirmation))
    context = {
        **admin.site.each_context(request),
        "title": "Slack message preview",
        "confirmation": confirmation,
        "blocks": content,
        "fallback": blocks.fallback_text(confirmation),
        "json": json.dumps({"blocks": content}, indent=2, ensure_ascii=False),
    }
    return TemplateResponse(request, "admin/notifications/slack_preview.html", context)
