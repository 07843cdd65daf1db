"""The admin's way through the governed-operation door: the same door as the API.

A change that loosens nothing is applied; a loosening is filed for another person's
approval and the admin says so (with a link to the queue) instead of "saved"."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.urls import reverse
from django.utils.html import format_html

from approvals import door
from approvals.door import Proposal
from common.errors import WardenError
from tenants.admin_base import reason_of
from tenants.models import Workspace


def through_door(
    model_admin, request, *, workspace: Workspace, proposal: Proposal, reason: str = ""
) -> tuple[bool, Any]:
    """(applied, result). A pending or refused change is reported to the user and
    marks the request refused (tenants.admin_base.WardenModelAdmin), so no "saved"
    message follows."""
    try:
        result = door.governed_change(
            workspace=workspace,
            actor=model_admin.actor(request),
            proposal=proposal,
            reason=reason or reason_of(request),
        )
    except WardenError as exc:
        model_admin.refuse(request, exc)
        return False, None
    if result.applied:
        return True, result.result
    confirmation_id = result.outcome.confirmation_id
    url = reverse("admin:approvals_confirmationrequest_review", args=[confirmation_id])
    model_admin.withhold_success(request)
    model_admin.message_user(
        request,
        format_html(
            "Not applied yet: {} needs another person's approval. It is waiting in the "
            '<a href="{}">approval queue</a>.',
            proposal.label,
            url,
        ),
        messages.WARNING,
    )
    return False, None
