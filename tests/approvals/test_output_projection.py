"""The output projection's grammar, how it is applied, and how a change to it is
judged (approvals.projection, approvals.effective)."""

import pytest

from approvals import effective, projection


def _digest(text: str) -> str:
    return f"d({text})"


@pytest.mark.parametrize(
    ("paths", "value", "kept"),
    [
        (["$"], {"a": 1, "b": [2]}, {"a": 1, "b": [2]}),
        (["$.a"], {"a": {"x": 1}, "b": 2}, {"a": {"x": 1}}),
        (["$.items[*].id"], {"items": [{"id": 1, "pii": "x"}]}, {"items": [{"id": 1}]}),
        ([], {"a": 1}, {}),
        (["$.a.b"], {"a": 5}, {"a": None}),  # a leaf where the path expected more
    ],
)
def test_a_projection_keeps_only_its_paths(paths, value, kept):
    assert projection.project_value(value, paths, _digest).value == kept


def test_what_is_withheld_is_named_by_path_and_digest_never_by_value():
    out = projection.project_value({"id": 1, "email": "a@b.c", "a@b.c": True}, ["$.id"], _digest)
    assert out.value == {"id": 1}
    # A key that is not a plain name may be data itself: named by position only.
    assert out.withheld == [
        {"path": "$.email", "digest": 'd("a@b.c")', "bytes": 7},
        {"path": "$[?]", "digest": "d(true)", "bytes": 4},
    ]


def test_free_text_and_upstream_meta_are_withheld_whole():
    result = {
        "content": [{"type": "text", "text": "Ada, a@b.c"}, {"type": "text", "text": '{"id":1}'}],
        "structuredContent": {"id": 1, "email": "a@b.c"},
        "_meta": {"trace": "x"},
        "isError": False,
    }
    out = projection.project_tool_result(result, ["$.id"], _digest)
    assert out.value == {
        "content": [{"type": "text", "text": '{"id": 1}'}],
        "structuredContent": {"id": 1},
        "isError": False,
    }
    assert [e["path"] for e in out.withheld] == [
        "structuredContent$.email",
        "content[0]",
        "_meta",
    ]
    assert out.count == 3


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, None),
        (["$", "$.a", "$.items[*].id", "$.x_y-z"], None),
        ("$.a", "A list"),
        (["a.b"], "starts with $"),
        (["$.a[0]"], "use .name or [*]"),
        (["$..a"], "use .name or [*]"),
        (["$.a", "$.a"], "twice"),
        (["$.a"] * 51, "At most 50"),
    ],
)
def test_only_the_documented_grammar_is_accepted(value, problem):
    found = projection.projection_problem(value)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    ("before", "after", "narrows"),
    [
        (None, ["$.id"], True),  # adding a projection
        (["$.a", "$.b"], ["$.a"], True),  # dropping a path
        (["$.items"], ["$.items[*].id"], True),  # a more specific path
        (["$.id"], None, False),  # removing it
        (["$.a"], ["$.a", "$.b"], False),  # a new path
        (["$.items[*].id"], ["$.items"], False),  # a wider path
        (["$.id"], ["$"], False),
        (["$.id"], [], True),  # nothing readable
    ],
)
def test_a_projection_change_is_judged_on_what_the_agent_reads(before, after, narrows):
    grown = effective.widening(
        effective.TOOL, {"output_projection": before}, {"output_projection": after}
    )
    assert (grown == ()) is narrows
