"""The Block Kit message of a confirmation request, built with slack_sdk's block models.

Agent text (summary, parameters, reason) goes only into `plain_text` objects, so Slack
never reads it as markup, mentions or links; invisible and direction-changing characters
are shown as ⟦U+XXXX⟧ (common.text) and long values are shortened visibly, saying how
many characters were left out. Our own words use mrkdwn."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest, Tool
from approvals.params_display import params_shown
from common.text import reveal_invisible

APPROVE = "warden_approve"
DENY = "warden_deny"
DENY_MODAL = "warden_deny_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_text"
VALUE_LIMIT = 300  # characters of one parameter shown before "… (+N characters)"
MAX_FIELDS = 10  # Slack allows ten fields in a section
SUMMARY_LIMIT = 600  # the parameters follow one by one


def _plain(text: str) -> PlainTextObject:
    # Never empty (Slack refuses an empty text object); emoji codes stay literal.
    return PlainTextObject(text=text or " ", emoji=False)


def _shorten(text: str, limit: int) -> str:
    """At most `limit` characters (Slack refuses longer text objects), saying how many
    were left out when it shortens."""
    text = reveal_invisible(text)
    if len(text) <= limit:
        return text
    for cut in range(limit, 0, -1):  # the suffix's own length depends on the count
        suffix = f"… (+{len(text) - cut} characters; the whole value is in Warden)"
        if cut + len(suffix) <= limit:
            return text[:cut] + suffix
    return text[:limit]


def effects(action: ActionRequest, confirmation: ConfirmationRequest, tool: Tool | None) -> list:
    """What approving does, in plain words (the review page's list, as Slack shows it)."""
    said = []
    if action.is_platform:
        said.append("Approving applies this change to Warden at once, for real.")
    elif action.dry_run:
        said.append(
            "Dry run: nothing will be executed for real; the agent only goes through the motions."
        )
    else:
        said.append(
            f"Approving lets the agent run {action.tool_name} once, with exactly these parameters."
        )
    if confirmation.irreversible:
        said.append("Irreversible: once done it cannot be undone.")
    if confirmation.approvals_required > 1:
        said.append(f"It needs {confirmation.approvals_required} different approvers.")
    if tool is not None and tool.level == "external":
        said.append("External: it reaches outside the company (people or systems).")
    return said


def _tool(action: ActionRequest) -> Tool | None:
    return Tool.objects.filter(workspace_id=action.workspace_id, name=action.tool_name).first()


def _who_asked(action: ActionRequest) -> str:
    if action.key_id is not None:
        key = action.key
        owner = getattr(key.owner, "email", "") if key.owner_id else ""
        return f"agent key {key.name} ({key.prefix})" + (f", owned by {owner}" if owner else "")
    return action.requested_by or "a member of this workspace"


def _param_fields(params: Any) -> tuple[list[PlainTextObject], int]:
    shown = params_shown(params, limit=VALUE_LIMIT)
    fields = []
    for item in shown[:MAX_FIELDS]:
        value = _shorten(item.full, VALUE_LIMIT)
        name = _shorten(item.name, 100)
        fields.append(_plain(f"{name}{' ★' if item.key else ''}\n{value}"))
    return fields, max(0, len(shown) - MAX_FIELDS)


def request_blocks(confirmation: ConfirmationRequest, *, review_url: str = "") -> list[dict]:
    """The message approvers see: summary, the values that matter, what approving does,
    who asked, expiry, and the buttons (or, once decided, who decided)."""
    action = confirmation.action_request
    tool = _tool(action)
    fields, more = _param_fields(action.params)
    blocks: list = [
        HeaderBlock(text=_plain(_shorten(f"Approval needed: {action.tool_name}", 140))),
        SectionBlock(text=_plain(_shorten(confirmation.summary, SUMMARY_LIMIT))),
    ]
    if fields:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text="*Parameters* (★ the ones that say who, how much, where)"
                ),
                fields=fields,
            )
        )
    if more:
        blocks.append(
            ContextBlock(
                elements=[
                    _plain(
                        f"and {more} more parameters: open the request in Warden to see them all"
                    )
                ]
            )
        )
    if action.reason:
        blocks.append(SectionBlock(text=_plain("Agent's reason: " + _shorten(action.reason, 500))))
    blocks.append(
        SectionBlock(
            text=MarkdownTextObject(
                text="*What approving does*\n"
                + "\n".join(f"• {line}" for line in effects(action, confirmation, tool))
            )
        )
    )
    expires = confirmation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    blocks.append(
        ContextBlock(
            elements=[
                _plain(f"Asked by {_who_asked(action)}"),
                _plain(f"Expires {expires} · request {str(action.pk)[:8]}"),
            ]
        )
    )
    blocks.append(DividerBlock())
    records = list(ApprovalRecord.objects.filter(confirmation=confirmation).order_by("created_at"))
    if confirmation.status == ConfirmationRequest.Status.PENDING:
        if records:
            given = ", ".join(r.approver.removeprefix("user:") for r in records)
            blocks.append(
                ContextBlock(
                    elements=[
                        _plain(
                            f"Approved by {given}; "
                            f"{confirmation.approvals_required - len(records)} more needed."
                        )
                    ]
                )
            )
        buttons = [
            ButtonElement(
                text=_plain("Approve"),
                action_id=APPROVE,
                value=str(confirmation.pk),
                style="primary",
                confirm=ConfirmObject(
                    title=_plain("Approve this request?"),
                    text=_plain(_shorten(confirmation.summary, 280)),
                    confirm=_plain("Approve"),
                    deny=_plain("Cancel"),
                ),
            ),
            ButtonElement(
                text=_plain("Deny…"), action_id=DENY, value=str(confirmation.pk), style="danger"
            ),
        ]
        if review_url:
            buttons.append(
                ButtonElement(
                    text=_plain("Open in Warden"), action_id="warden_open", url=review_url
                )
            )
        blocks.append(ActionsBlock(block_id="decide", elements=buttons))
    else:
        blocks.append(SectionBlock(text=_plain(decided_line(confirmation, records))))
        if review_url:
            blocks.append(
                ActionsBlock(
                    block_id="open",
                    elements=[
                        ButtonElement(
                            text=_plain("Open in Warden"), action_id="warden_open", url=review_url
                        )
                    ],
                )
            )
    return [block.to_dict() for block in blocks]


def decided_line(confirmation: ConfirmationRequest, records: list[ApprovalRecord]) -> str:
    S = ConfirmationRequest.Status
    if confirmation.status == S.EXPIRED:
        return "Expired: nobody decided in time. Nothing was done."
    if confirmation.status == S.DENIED:
        denial = next((r for r in records if r.verdict == ApprovalRecord.Verdict.DENY), None)
        who = denial.approver.removeprefix("user:") if denial else "an approver"
        reason = _shorten(denial.reason, 300) if denial else ""
        return f"Denied by {who}: {reason}"
    approvers = ", ".join(
        r.approver.removeprefix("user:")
        for r in records
        if r.verdict == ApprovalRecord.Verdict.APPROVE
    )
    return f"{str(confirmation.status).capitalize()} by {approvers or 'approvers'}."


def fallback_text(confirmation: ConfirmationRequest) -> str:
    """The notification text (and what screen readers say): tool and summary."""
    return _shorten(
        f"Approval needed: {confirmation.action_request.tool_name}: {confirmation.summary}", 300
    )


def deny_modal(confirmation: ConfirmationRequest, *, channel: str) -> dict:
    """The modal Deny opens: a reason is required, like in the admin."""
    return View(
        type="modal",
        callback_id=DENY_MODAL,
        private_metadata=f"{confirmation.pk}|{channel}",
        title=_plain("Deny request"),
        submit=_plain("Deny"),
        close=_plain("Cancel"),
        blocks=[
            SectionBlock(text=_plain(_shorten(confirmation.summary, 1000))),
            InputBlock(
                block_id=REASON_BLOCK,
                label=_plain("Why deny it? (the agent and the audit trail see this)"),
                element=PlainTextInputElement(
                    action_id=REASON_INPUT, multiline=True, max_length=2000
                ),
            ),
        ],
    ).to_dict()
