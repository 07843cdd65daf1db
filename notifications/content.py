"""What notifications say. Agent-supplied text (summaries, reasons, tool parameters)
is data: it is cleaned of control characters, quoted in the text email, escaped in
the HTML email by template autoescaping, and never used as a template itself. No
notification carries a confirmation token."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_FIELD = 2000


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def clean_text(value, *, limit: int = MAX_FIELD) -> str:
    """Printable text only (no control or bidi characters), bounded in length."""
    text = _CONTROL.sub("", str(value if value is not None else ""))
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
