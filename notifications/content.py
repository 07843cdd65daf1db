"""What notifications say. Agent-supplied text (summaries, reasons, tool parameters)
is data: hidden characters (controls, bidi, zero-width) are shown as ⟦U+XXXX⟧ markers
rather than silently dropped, so an approver sees that they are there; it is quoted
in the text email, escaped in the HTML email by template autoescaping, and never used
as a template itself. No notification carries a confirmation token."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string

from common.text import reveal_invisible

MAX_FIELD = 2000


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def clean_text(value, *, limit: int = MAX_FIELD) -> str:
    """Hidden characters shown as markers; bounded in length, saying how much was cut."""
    text = reveal_invisible(str(value if value is not None else ""))
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit:,} characters)"


def clean_line(value, *, limit: int = 150) -> str:
    """One line (subjects, names): newlines become spaces, so no header injection."""
    return clean_text(str(value or "").replace("\r", " ").replace("\n", " "), limit=limit)


def quoted(value) -> str:
    """Agent text as an e-mail quote block, so it cannot pose as our own words."""
    lines = clean_text(value).splitlines() or [""]
    return "\n".join(f"> {line}" for line in lines)


def admin_url(path: str) -> str:
    base = (settings.WARDEN_PUBLIC_URL or "").rstrip("/")
    return f"{base}{path}" if base else ""


def render_email(template: str, context: dict, *, subject: str) -> EmailContent:
    """`template` names a pair under notifications/email/: <name>.txt and <name>.html."""
    agent = context.get("agent", {})
    context = {
        **context,
        "agent": {k: clean_text(v) for k, v in agent.items()},
        "quoted": {k: quoted(v) for k, v in agent.items()},
    }
    return EmailContent(
        subject=clean_line(f"[Warden] {subject}", limit=190),
        text=render_to_string(f"notifications/email/{template}.txt", context),
        html=render_to_string(f"notifications/email/{template}.html", context),
    )
