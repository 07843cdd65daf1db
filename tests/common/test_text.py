"""Hidden characters in agent text are shown, never passed through or dropped."""

import re

import pytest
from django.template import Context, Template
from django.utils.html import conditional_escape, format_html
from hypothesis import example, given, settings
from hypothesis import strategies as st

from common.text import (
    _HTML_MARKER,
    _highlight_markers,
    has_invisible,
    has_unstorable,
    reveal_invisible,
    reveal_invisible_html,
    strip_unstorable,
)

HIDDEN = [
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # bidi embeddings and overrides
    "\u2066", "\u2067", "\u2068", "\u2069",  # bidi isolates
    "\u200e", "\u200f",  # direction marks
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",  # zero-width
    "\u00ad", "\U000e0041",  # other format characters: soft hyphen, tag letter
    "\x1b", "\x00", "\u2028", "\u2029",  # controls and separators
]  # fmt: skip


@pytest.mark.parametrize("char", HIDDEN)
def test_each_hidden_character_becomes_a_marker(char):
    shown = reveal_invisible(f"a{char}b")
    assert shown == f"a⟦U+{ord(char):04X}⟧b"
    assert has_invisible(f"a{char}b")


def test_bidi_override_cannot_reverse_what_is_read():
    assert reveal_invisible('this.\u202eevil",') == 'this.⟦U+202E⟧evil",'


def test_plain_text_layout_and_other_scripts_are_unchanged():
    text = "Grüße, 東京 — naïve café\n\tline two\r\n"
    assert reveal_invisible(text) == text
    assert not has_invisible(text)


def test_markers_can_be_ascii_for_latin1_outputs():
    assert reveal_invisible("x\u200by", opening="[", closing="]") == "x[U+200B]y"


def test_html_version_escapes_first_and_marks_hidden_characters():
    html = reveal_invisible_html('<b>x</b>\u202e"')
    assert html == (
        '&lt;b&gt;x&lt;/b&gt;<span class="warden-invisible" title="hidden character U+202E">'
        "⟦U+202E⟧</span>&quot;"
    )


def test_template_filter_keeps_autoescaping():
    template = Template("{% load warden_text %}{{ value|reveal }}|{{ empty|reveal|default:'-' }}")
    out = template.render(Context({"value": "<script>\u2066", "empty": ""}))
    assert out.startswith('&lt;script&gt;<span class="warden-invisible"')
    assert "<script>" not in out
    assert out.endswith("|-")


def test_html_version_highlights_markers_already_in_stored_text():
    html = reveal_invisible_html("to ann@example.com⟦U+202E⟧ <i>")
    assert html == (
        'to ann@example.com<span class="warden-invisible" title="hidden character U+202E">'
        "⟦U+202E⟧</span> &lt;i&gt;"
    )


# The regular expressions these functions used before they became plain string code.
_OLD_MARKER = re.compile(r"⟦(U\+[0-9A-F]{4,6})⟧")
_OLD_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_TEXT = st.lists(
    st.sampled_from(["⟦U+", "⟧", "⟦", "U+", "0", "9", "A", "F", "f", "G", "<", "&", "\x00"])
    | st.sampled_from(["\ud800", "\udfff", "\U0001f600", "é", "x", " "]),
    max_size=20,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
@example("⟦U+AAA⟧ ⟦U+0041⟧ ⟦U+10FFFF⟧ ⟦U+1234567⟧ ⟦U+abcd⟧ ⟦U+⟦U+202E⟧ ⟦U+20G0⟧")
def test_markers_are_highlighted_exactly_where_the_old_pattern_found_them(text):
    escaped = str(conditional_escape(text))
    old = _OLD_MARKER.sub(lambda m: format_html(_HTML_MARKER, m.group(1)), escaped)
    assert _highlight_markers(escaped) == old


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_unstorable_characters_are_found_and_stripped_as_before(text):
    assert has_unstorable(text) == (_OLD_UNSTORABLE.search(text) is not None)
    assert strip_unstorable(text) == _OLD_UNSTORABLE.sub("", text)
