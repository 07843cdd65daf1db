"""`{{ value|reveal }}`: agent text escaped, hidden characters shown (common/text.py)."""

from django import template

from common.text import reveal_invisible_html

register = template.Library()


@register.filter
def reveal(value):
    """Escaped text with each invisible or bidi character as a visible ⟦U+XXXX⟧ marker."""
    return reveal_invisible_html(value)
