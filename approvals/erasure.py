"""Erasing a data subject's (or a request's) personal data by crypto-shredding
(approvals.personal_data), and sealing the plain copies of rows written before sealing.

Erasure destroys the requests' data keys: their params, confirmation summary, reported
output and the gateway's output copy become unreadable at once; the rows stay (status,
digests, who decided what), and so does every audit entry, so the chain verifies as
before. Other apps register an eraser for the plain copies they hold outside the
sealed store (notification payloads and emails, which quote the summary; executions'
pre-sealing output copies).

Who may erase: a human (never a machine key: an agent cannot destroy the evidence of
its own calls), with a non-blank reason, through the API (the compliance permission,
`download_privacy_summary`) or `manage.py erase` (an operator with a shell). It is not
a governed operation filed for a second human (approvals.door): it widens nothing an
agent may do and leaves the chain whole, and a data subject's request has a legal
deadline. It is audited (`data.personal_data_erased`: actor, reason, the request ids,
the subject's keyed digest, never the value). Requests still waiting for a human
(pending, or approved and not yet used) are refused: an approver must never decide on
something nobody can read any more.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import personal_data
from approvals.models import PLATFORM_TOOL_PREFIX, ActionRequest, ConfirmationRequest
from audit.chain import GENESIS_HASH
from audit.events import EVENTS
from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Workspace

MAX_REQUESTS = 10_000
_WAITING = (ActionRequest.Status.PENDING, ActionRequest.Status.APPROVED)

# name -> eraser(workspace, request ids) -> how many copies it erased.
Eraser = Callable[[Workspace, list[str]], int]
ERASERS: dict[str, Eraser] = {}


def register_eraser(name: str, eraser: Eraser) -> None:
    ERASERS[name] = eraser


@dataclass
class ErasureResult:
    workspace: str
    by: str
    action_requests: list[str] = field(default_factory=list)
    copies: dict[str, int] = field(default_factory=dict)


def subject_digests(workspace: Workspace, subject: str) -> list[str]:
    """The keyed digests a subject's value may have been recorded under: as the text
    given and, when it reads as another JSON value (a number), as that value too."""
    digests = {personal_data.subject_digest(workspace.pk, subject)}
    try:
        parsed = json.loads(subject)
    except ValueError:
        parsed = subject
    if parsed != subject and parsed not in (None, ""):
        digests.add(personal_data.subject_digest(workspace.pk, parsed))
    return sorted(d for d in digests if d)


def _require_human(actor: Actor, reason: str) -> None:
    if actor.key is not None:
        raise WardenError("humans_only", "Only a human may erase personal data.")
    if not (reason or "").strip():
        raise WardenError(
            "validation_error",
            "Say why these values are erased (the reason is recorded).",
            {"reason": ["Required."]},
        )


def personal_data_erase(
    *,
    workspace: Workspace,
    actor: Actor,
    reason: str,
    action_ids: Iterable[Any] = (),
    subject: str = "",
) -> ErasureResult:
    """Destroy the data keys of the named requests, or of every request whose tool's
    subject parameter held `subject`; one transaction, one audit entry."""
    _require_human(actor, reason)
    ids = [str(i) for i in action_ids]
    if bool(ids) == bool(subject):
        raise WardenError(
            "validation_error",
            "Name either the action requests or the data subject to erase.",
            {"action_ids": ["Give action ids or a subject, not both."]},
        )
    base = ActionRequest.objects.filter(workspace=workspace).exclude(
        tool_name__startswith=PLATFORM_TOOL_PREFIX
    )
    digests = subject_digests(workspace, subject) if subject else []
    with transaction.atomic():
        if subject:
            rows = base.filter(subject_digest__in=digests)
        else:
            rows = base.filter(pk__in=_valid_uuids(ids))
        rows = list(
            rows.select_for_update()
            .order_by("created_at")
            .only("pk", "status", "erased_at", "data_key")[: MAX_REQUESTS + 1]
        )
        if ids and len(rows) != len(set(ids)):
            # Another workspace's request answers like a missing one.
            raise WardenError("not_found", "Not found.", {"action_ids": ["Unknown request."]})
        if len(rows) > MAX_REQUESTS:
            raise WardenError("validation_error", f"At most {MAX_REQUESTS} requests at once.")
        waiting = [str(r.pk) for r in rows if r.status in _WAITING]
        if waiting:
            raise WardenError(
                "conflict",
                "Some of these requests are still waiting for a human: decide or expire "
                "them first.",
                {"action_ids": waiting},
            )
        now = timezone.now()
        erased = [str(r.pk) for r in rows if r.erased_at is None]
        ActionRequest.objects.filter(pk__in=erased).update(data_key="", erased_at=now)
        result = ErasureResult(workspace.slug, "subject" if subject else "request", erased)
        for name, eraser in ERASERS.items():
            result.copies[name] = eraser(workspace, erased)
        audit_record(
            EVENTS[AuditAction.PERSONAL_DATA_ERASED].event(
                target_id=workspace.pk,
                input={
                    "by": result.by,
                    "subject_digest": digests[0] if digests else "",
                    "action_requests": erased,
                    "reason": reason,
                    "copies": result.copies,
                },
                rationale=reason,
                outcome="erased",
            ),
            workspace=workspace,
            actor=actor,
        )
    return result


def _valid_uuids(ids: list[str]) -> list[str]:
    valid = []
    for value in ids:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            raise WardenError(
                "validation_error", "Not an action id.", {"action_ids": [value[:64]]}
            ) from None
    return valid


# --- sealing rows from before ---------------------------------------------------------------


@dataclass
class SealResult:
    workspace: str
    action_requests: int = 0
    confirmations: int = 0
    copies: int = 0  # other apps' copies (executions' outputs)
    entries_with_plain_values: int = 0


def _chain_head(workspace: Workspace) -> tuple[int, str]:
    last = (
        AuditEntry.objects.filter(workspace=workspace)
        .order_by("-seq")
        .values_list("seq", "hash")
        .first()
    )
    return last if last is not None else (0, GENESIS_HASH)


def entries_with_plain_values(workspace: Workspace) -> int:
    """Agent requests' entries written before sealing, which still quote the values."""
    return (
        AuditEntry.objects.filter(
            workspace=workspace,
            action__in=(AuditAction.ACTION_DECIDED, AuditAction.EXECUTION_RECORDED),
            input__has_key="params",
        )
        .exclude(tool__startswith=PLATFORM_TOOL_PREFIX)
        .count()
    )


def personal_data_seal(*, workspace: Workspace, actor: Actor) -> SealResult:
    """Move the plain copies of agent requests written before sealing into the sealed
    store (params, reported output, confirmation summary, the outcome's summary), in one
    transaction with one audit entry naming the chain head it ran at. Idempotent."""
    result = SealResult(workspace.slug)
    with transaction.atomic():
        rows = (
            ActionRequest.objects.select_for_update()
            .filter(workspace=workspace, sealed_params="", erased_at__isnull=True)
            .exclude(tool_name__startswith=PLATFORM_TOOL_PREFIX)
            .order_by("created_at")
        )
        sealed = []
        for action in rows:
            plain, output = action.plain_params, action.result_output
            if not plain and output is None and not action.outcome.get("summary"):
                continue
            action.params = plain  # the setter seals it (a new data key)
            if output is not None:
                action.sealed_output = action.seal_value(output)
                action.result_output = None
            action.outcome = {k: v for k, v in action.outcome.items() if k != "summary"}
            action.save(
                update_fields=[
                    "plain_params",
                    "sealed_params",
                    "sealed_output",
                    "result_output",
                    "data_key",
                    "outcome",
                ]
            )
            sealed.append(str(action.pk))
        for confirmation in (
            ConfirmationRequest.objects.select_for_update()
            .filter(workspace=workspace, sealed_summary="")
            .exclude(plain_summary="")
            .exclude(action_request__tool_name__startswith=PLATFORM_TOOL_PREFIX)
            .select_related("action_request")
        ):
            confirmation.summary = confirmation.plain_summary  # the setter seals it
            confirmation.save(update_fields=["plain_summary", "sealed_summary"])
            action = confirmation.action_request
            if action.pk and str(action.pk) not in sealed:
                action.save(update_fields=["data_key"])
            result.confirmations += 1
        result.action_requests = len(sealed)
        result.copies = sum(sealer(workspace) for sealer in SEALERS.values())
        result.entries_with_plain_values = entries_with_plain_values(workspace)
        if sealed or result.confirmations or result.copies:
            seq, head = _chain_head(workspace)
            audit_record(
                EVENTS[AuditAction.PERSONAL_DATA_SEALED].event(
                    target_id=workspace.pk,
                    input={
                        "action_requests": sealed,
                        "chain_head_seq": seq,
                        "chain_head_hash": head,
                        "entries_with_plain_values": result.entries_with_plain_values,
                    },
                    rationale="plain copies from before sealing moved into the sealed store",
                    outcome="sealed",
                ),
                workspace=workspace,
                actor=actor,
            )
    return result


# name -> sealer(workspace): other apps' plain copies from before sealing (executions).
SEALERS: dict[str, Callable[[Workspace], int]] = {}


def register_sealer(name: str, sealer: Callable[[Workspace], int]) -> None:
    SEALERS[name] = sealer
