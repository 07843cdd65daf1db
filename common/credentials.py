"""Is this text shaped like a credential? The pattern detectors of `detect-secrets`
(Yelp, Apache-2.0): provider key formats (AWS, GitHub, GitLab, Slack, Stripe, OpenAI,
npm, PyPI, SendGrid, Twilio, ...), private-key blocks, JSON Web Tokens and URLs with
a password in them. Entropy and keyword detectors are left out on purpose: on
structured parameters they flag order numbers, hashes and UUIDs, which are not
secrets.

Linear time. The text scanned is the agent's: detect-secrets' patterns run by
Python's backtracking engine take quadratic time on hostile input (the npm and basic
auth patterns on "//" + "/" * 20000 took seconds). Each pattern is therefore
translated, once at import, from its parsed form into RE2 syntax and run by RE2
(google-re2), whose matching time is linear in the text. The translation keeps
Python's meaning: Unicode `\\d`, `\\s`, `\\w`, `$` before a final newline, and the
lookarounds RE2 lacks, rewritten as the character they look at (sound only because
the scan asks "is there a match", never where: a lookbehind is accepted only at the
start of a pattern, a negative lookahead only where the rest of the pattern can match
nothing). A construct it cannot translate fails the import, never the scan."""

from __future__ import annotations

import functools
import re
import re._constants as sre
import re._parser as sre_parse

import re2
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector

# Shorter text cannot hold any of the detected formats.
MIN_LENGTH = 12
# Detectors that find things that are not credentials.
_NOT_CREDENTIALS = frozenset({"Public IP (ipv4)"})

# Python's Unicode classes (str patterns), spelled for RE2, whose own are ASCII-only.
_WORD = r"\p{L}\p{N}_"  # str.isalnum() or "_"
_DIGIT = r"\p{Nd}"  # str.isdecimal()
_SPACE = r"\t-\r\x{1c}-\x{20}\x{85}\p{Z}"  # str.isspace()
_CATEGORIES = {
    sre.CATEGORY_WORD: (_WORD, False),
    sre.CATEGORY_NOT_WORD: (_WORD, True),
    sre.CATEGORY_DIGIT: (_DIGIT, False),
    sre.CATEGORY_NOT_DIGIT: (_DIGIT, True),
    sre.CATEGORY_SPACE: (_SPACE, False),
    sre.CATEGORY_NOT_SPACE: (_SPACE, True),
}
_RE2_MAX_REPEAT = 1000  # RE2 refuses larger counts: {50,1024} becomes {50,1000}{0,24}
# RE2's memory budget per compiled pattern; past it RE2 falls back from its DFA to its
# NFA, slower but still linear (never to backtracking).
_MAX_MEM = 32 << 20
_FLAGS_KEPT = re.IGNORECASE | re.UNICODE | re.VERBOSE  # VERBOSE is gone once parsed


class Untranslatable(ValueError):
    """A pattern uses a construct the RE2 translation does not keep the meaning of."""


def _char(code: int) -> str:
    char = chr(code)
    return char if char.isascii() and char.isalnum() else f"\\x{{{code:x}}}"


def _class_items(items) -> tuple[str, bool]:
    """The inside of a character class (without brackets) and whether it is negated."""
    negated, parts = False, []
    for op, av in items:
        if op is sre.NEGATE:
            negated = True
        elif op is sre.LITERAL:
            parts.append(_char(av))
        elif op is sre.RANGE:
            parts.append(f"{_char(av[0])}-{_char(av[1])}")
        elif op is sre.CATEGORY and av in _CATEGORIES:
            inside, category_negated = _CATEGORIES[av]
            if category_negated:
                if len(items) != 1:
                    raise Untranslatable("a negated class inside a class")
                return inside, True
            parts.append(inside)
        else:
            raise Untranslatable(f"class item {op} {av}")
    return "".join(parts), negated


def _one_char(sub) -> tuple[str, bool]:
    """A lookaround's body as a class: (inside, negated); only single characters."""
    items = list(sub)
    if len(items) != 1:
        raise Untranslatable("a lookaround longer than one character")
    op, av = items[0]
    if op is sre.LITERAL:
        return _char(av), False
    if op is sre.NOT_LITERAL:
        return _char(av), True
    if op is sre.IN:
        return _class_items(av)
    raise Untranslatable(f"lookaround body {op}")


def _class(inside: str, negated: bool) -> str:
    return f"[{'^' if negated else ''}{inside}]"


def _width(items, state) -> tuple[int, int]:
    return sre_parse.SubPattern(state, list(items)).getwidth()


def _emit(items, state, *, at_start: bool, tail_empty: bool) -> str:
    """RE2 syntax for a parsed sequence. `at_start`: nothing before it can consume a
    character; `tail_empty`: everything after it can match the empty string."""
    items = list(items)
    widths = [_width([item], state) for item in items]
    out = []
    for index, (op, av) in enumerate(items):
        start = at_start and all(high == 0 for _, high in widths[:index])
        tail = tail_empty and all(low == 0 for low, _ in widths[index + 1 :])
        out.append(_emit_one(op, av, state, at_start=start, tail_empty=tail))
    return "".join(out)


def _emit_one(op, av, state, *, at_start: bool, tail_empty: bool) -> str:
    nested = {"at_start": at_start, "tail_empty": tail_empty}
    if op is sre.LITERAL:
        return _char(av)
    if op is sre.NOT_LITERAL:
        return _class(_char(av), True)
    if op is sre.ANY:
        return "."  # neither engine's dot matches "\n" without DOTALL
    if op is sre.IN:
        return _class(*_class_items(av))
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            raise Untranslatable("inline flags")
        return f"(?:{_emit(sub, state, **nested)})"
    if op is sre.BRANCH:
        return "(?:" + "|".join(_emit(alt, state, **nested) for alt in av[1]) + ")"
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, high, sub = av
        body = f"(?:{_emit(sub, state, at_start=False, tail_empty=False)})"
        lazy = "?" if op is sre.MIN_REPEAT else ""
        if high == sre.MAXREPEAT:
            if low > _RE2_MAX_REPEAT:
                raise Untranslatable("a repeat count RE2 refuses")
            return f"{body}{{{low},}}{lazy}"
        chunks = []
        while high > _RE2_MAX_REPEAT:
            chunks.append(f"{body}{{{min(low, _RE2_MAX_REPEAT)},{_RE2_MAX_REPEAT}}}{lazy}")
            low, high = max(0, low - _RE2_MAX_REPEAT), high - _RE2_MAX_REPEAT
        return "".join(chunks) + f"{body}{{{low},{high}}}{lazy}"
    if op is sre.AT:
        if av is sre.AT_BEGINNING or av is sre.AT_BEGINNING_STRING:
            return r"\A"
        if av is sre.AT_END_STRING:
            return r"\z"
        if av is sre.AT_END and tail_empty:
            return r"(?:\n?\z)"  # Python's `$`: at the end or before a final newline
        raise Untranslatable(f"anchor {av}")
    if op is sre.ASSERT and av[0] < 0 and at_start:
        # (?<=C) at the start: whether some match exists is unchanged by consuming C.
        sub = list(av[1])
        if len(sub) == 1 and sub[0] == (sre.AT, sre.AT_BEGINNING):
            return r"\A"
        return _class(*_one_char(sub))
    if op is sre.ASSERT_NOT and av[0] > 0 and tail_empty:
        # X(?!C) with nothing required after it: X followed by a non-C or the end.
        inside, negated = _one_char(av[1])
        return f"(?:{_class(inside, not negated)}|\\z)"
    raise Untranslatable(f"{op} {av}")


def to_re2(pattern: re.Pattern) -> str:
    """`pattern` (a compiled str pattern) in RE2 syntax, with the same answer to "is
    there a match in this text"."""
    if not isinstance(pattern.pattern, str) or pattern.flags & ~_FLAGS_KEPT:
        raise Untranslatable(f"flags {pattern.flags}")
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    body = _emit(parsed, parsed.state, at_start=True, tail_empty=True)
    return f"(?{'i' if pattern.flags & re.IGNORECASE else ''}:{body})"


def _options() -> re2.Options:
    options = re2.Options()
    options.never_capture = True
    options.log_errors = False
    options.max_mem = _MAX_MEM
    return options


def _set(re2_patterns) -> re2.Set:
    found = re2.Set.SearchSet(_options())
    for re2_pattern in re2_patterns:
        found.Add(re2_pattern)
    found.Compile()
    return found


def _patterns() -> tuple[tuple[str, re.Pattern], ...]:
    found = []
    for secret_type, plugin in sorted(get_mapping_from_secret_type_to_class().items()):
        if not issubclass(plugin, RegexBasedDetector) or secret_type in _NOT_CREDENTIALS:
            continue
        found.extend((secret_type, pattern) for pattern in plugin().denylist)
    return tuple(found)


# detect-secrets' own patterns (Python `re`): kept for reference and for the tests
# that hold the translation to them; never run on agent text.
PATTERNS = _patterns()
TRANSLATED = tuple((secret_type, to_re2(pattern)) for secret_type, pattern in PATTERNS)
# One RE2 set names the first kind found in one pass (45 separate searches would cost a
# hundred times more on short strings). A set whose DFA runs out of memory reports "no
# match", so "no match" is confirmed by one search of all the patterns at once, which
# falls back to RE2's NFA instead (slower on a hit, never wrong); only after a failed
# set does the pattern-by-pattern search name the kind.
_NAMES = _set(translated for _, translated in TRANSLATED)
_ANY = re2.compile("|".join(translated for _, translated in TRANSLATED), _options())


@functools.cache
def _each(index: int):
    """Pattern `index` alone, compiled when first needed (after a failed set only)."""
    return re2.compile(TRANSLATED[index][1], _options())


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # unpaired surrogates: no detector matches one anyway
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def credential_type(text: str) -> str | None:
    """The kind of credential `text` contains (e.g. "AWS Access Key"), or None.
    Linear in len(text): every pattern runs in RE2 over the text encoded once."""
    if len(text) < MIN_LENGTH:
        return None
    encoded = _utf8(text)
    found = _NAMES.Match(encoded)
    if found:
        return TRANSLATED[min(found)][0]
    if _ANY.search(encoded) is None:
        return None
    for index, (secret_type, _) in enumerate(TRANSLATED):
        if _each(index).search(encoded) is not None:
            return secret_type
    return TRANSLATED[0][0]  # not reached: _ANY matches only where one of these does
