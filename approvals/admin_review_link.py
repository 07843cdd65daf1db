"""The review page reached through a notification's signed link (`?link=…`).

A genuine, unexpired link simply shows the review page, under the same login and
`approve_actions` check as any other visit; it never grants anything. An expired or
tampered link shows an admin page saying so, with the way to the queue. Requests the
viewer may not see answer 404 whatever the link says (the review page's own rule)."""

from __future__ import annotations

from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse

from approvals import admin_views
from approvals.review_link import (
    QUERY_PARAMETER,
    VERDICTS,
    LinkState,
    decision_link_state,
    review_link_state,
)

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
    return _link_refused(model_admin, request, state)


def email_decision_view(model_admin, request, pk, verdict):
    """An e-mail's Approve or Deny button: the review page, in the approver's own session
    (the admin's login comes first and returns here), turned into a one-press question.
    GET never decides: the page's form POSTs, with CSRF, to the queue's decide view, so
    permissions, four eyes, two approvers, custody and expiry are the admin's own."""
    if verdict not in VERDICTS:
        raise Http404("No such button.")
    workspace_id = (
        model_admin.get_queryset(request).filter(pk=pk).values_list("workspace_id", flat=True)
    ).first()
    if workspace_id is None:  # not visible to this user: as if it did not exist
        raise Http404("No such request.")
    state = decision_link_state(
        request.GET.get(QUERY_PARAMETER) or "",
        confirmation_id=pk,
        workspace_id=workspace_id,
        verdict=verdict,
    )
    if state is not LinkState.VALID:
        return _link_refused(model_admin, request, state)
    response = admin_views.review_view(model_admin, request, pk)
    response.template_name = "admin/approvals/email_decision.html"
    response.context_data.update(
        title=f"{verdict.capitalize()} request: {response.context_data['action'].tool_name}",
        verdict=verdict,
        review_url=reverse(
            f"admin:{model_admin.model._meta.app_label}_{model_admin.model._meta.model_name}"
            "_review",
            args=[pk],
        ),
    )
    return response


def _link_refused(model_admin, request, state: LinkState):
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
