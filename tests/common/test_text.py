"""Hidden characters in agent text are shown, never passed through or dropped."""

import pytest
from django.template import Context, Template

from common.text import has_invisible, reveal_invisible, reveal_invisible_html

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
