"""Text as people and databases need it.

Showing agent text to people without hidden characters:

Bidi controls (U+202A-202E, U+2066-2069, U+200E/200F) reorder what a reader sees:
`this.\\u202eevil",` displays as `this.,"live`. Zero-width and other format
characters (U+200B-200D, U+2060, U+FEFF, the rest of Unicode category Cf) hide
content, say a second address behind a first one. Control characters and line or
paragraph separators are no better. Wherever agent text is shown to a person
(admin pages, summaries, emails, the PDF) each such character is replaced by a
visible marker naming its code point, e.g. ``⟦U+202E⟧``; the text is not otherwise
changed, so escaping (templates' autoescape) still applies afterwards."""

from __future__ import annotations

import unicodedata
from typing import Any

from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

# Kept as they are: the layout characters every text display already shows honestly.
_LAYOUT = frozenset("\n\r\t")
_HIDDEN_CATEGORIES = frozenset({"Cf", "Cc", "Zl", "Zp"})
_MARKER_OPENING, _MARKER_CLOSING = "⟦U+", "⟧"
_HEX = frozenset("0123456789ABCDEF")
_HTML_MARKER = '<span class="warden-invisible" title="hidden character {0}">⟦{0}⟧</span>'


def is_invisible(char: str) -> bool:
    """True for a character a reader cannot see or that changes how others are seen."""
    return char not in _LAYOUT and unicodedata.category(char) in _HIDDEN_CATEGORIES


def has_invisible(text: str) -> bool:
    return not text.isprintable() and any(is_invisible(c) for c in text)


def reveal_invisible(text: str, *, opening: str = "⟦", closing: str = "⟧") -> str:
    """`text` with every invisible or direction-changing character shown as
    ``⟦U+XXXX⟧`` (markers configurable: the PDF's core fonts need ASCII ones)."""
    if text.isprintable():  # the common case: no hidden characters at all
        return text
    return "".join(f"{opening}U+{ord(c):04X}{closing}" if is_invisible(c) else c for c in text)


def reveal_invisible_html(value: Any) -> SafeString:
    """`value` as escaped HTML with each hidden character as a highlighted marker,
    markers already in the text (summaries are stored revealed) highlighted alike.
    Escaping comes first, so agent text stays inert; only our own spans are markup."""
    text = reveal_invisible("" if value is None else str(value))
    escaped = conditional_escape(text)
    if "⟦U+" not in escaped:
        return escaped
    # Markers hold no character that escaping changes, so they survive it intact.
    return mark_safe(_highlight_markers(escaped))  # noqa: S308 - escaped; only our spans added


def _highlight_markers(escaped: str) -> str:
    """Each ``⟦U+XXXX⟧`` (4 to 6 upper-case hex digits) as a highlighted span. Plain
    string scanning, one pass, no regular expression: the text is the agent's."""
    first, *rest = escaped.split(_MARKER_OPENING)
    out = [first]
    for part in rest:
        end = part.find(_MARKER_CLOSING, 0, 7)
        if 4 <= end <= 6 and _HEX.issuperset(part[:end]):
            out.append(format_html(_HTML_MARKER, "U+" + part[:end]) + part[end + 1 :])
        else:
            out.append(_MARKER_OPENING + part)
    return "".join(out)


# -- characters no database column can hold -------------------------------------------
# NUL (PostgreSQL text and jsonb refuse it, a 500 wherever it reaches a query) and
# unpaired surrogates (not encodable as UTF-8, so neither storable nor renderable as
# JSON). Found by the UTF-8 codec, in C and in one pass; no regular expression.


def has_unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def strip_unstorable(text: str) -> str:
    """`text` without NUL and surrogate code points (the codec drops exactly those)."""
    return text.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")
