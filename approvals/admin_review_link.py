"""The review page reached through a notification's signed link (`?link=…`).

A genuine, unexpired link simply shows the review page, under the same login and
`approve_actions` check as any other visit; it never grants anything. An expired or
tampered link shows an admin page saying so, with the way to the queue. Requests the
viewer may not see answer 404 whatever the link says (the review page's own rule)."""

from __future__ import annotations

from django.template.response import TemplateResponse
from django.urls import reverse

from approvals import admin_views
from approvals.review_link import QUERY_PARAMETER, LinkState, review_link_state

STATUS = {LinkState.EXPIRED: 410, LinkState.INVALID: 400}


def linked_review_view(model_admin, request, pk):
    token = request.GET.get(QUERY_PARAMETER)
    if token is None:
        return admin_views.review_view(model_admin, request, pk)
    workspace_id = (
        model_admin.get_queryset(request).filter(pk=pk).values_list("workspace_id", flat=True)
    ).first()
    if workspace_id is None:  # not visible to this user: the review page's 404
        return admin_views.review_view(model_admin, request, pk)
    state = review_link_state(token, confirmation_id=pk, workspace_id=workspace_id)
    if state is LinkState.VALID:
        return admin_views.review_view(model_admin, request, pk)
    opts = model_admin.model._meta
    context = {
        **admin_views.page_context(model_admin, request),
        "title": "Review link expired" if state is LinkState.EXPIRED else "Review link not valid",
        "opts": opts,
        "link_state": state.value,
        "queue_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    return TemplateResponse(
        request, "admin/approvals/review_link.html", context, status=STATUS[state]
    )
