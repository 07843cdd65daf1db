"""`{{ value|reveal }}`: agent text escaped, hidden characters shown (common/text.py)."""

import uuid

from django import template

from common.text import reveal_invisible_html

register = template.Library()


@register.filter
def reveal(value):
    """Escaped text with each invisible or bidi character as a visible ⟦U+XXXX⟧ marker."""
    return reveal_invisible_html(value)


REVIEW_PATH = "/admin/approvals/confirmationrequest/"


@register.filter
def review_request_id(next_url) -> str:
    """The request a login is for, when `next` is a review page ('' otherwise): a signed
    link that needs a login says what it will open. Read from the URL alone, so an
    anonymous visitor learns nothing the link did not already carry."""
    path = str(next_url or "").split("?", 1)[0]
    if not path.startswith(REVIEW_PATH):
        return ""
    candidate = path[len(REVIEW_PATH) :].strip("/")
    try:
        return str(uuid.UUID(candidate))[:8]
    except ValueError:
        return ""
