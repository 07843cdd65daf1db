"""The credential scan runs detect-secrets' patterns in RE2 (linear time) and answers
exactly as detect-secrets' own Python patterns do: the translation is held to them on
known credentials, near misses and generated text built from the patterns' pieces."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import credentials
from common.credentials import PATTERNS, TRANSLATED, Untranslatable, credential_type, to_re2


def python_type(text: str) -> str | None:
    """What the scan answered before RE2: the first detect-secrets pattern found."""
    if len(text) < credentials.MIN_LENGTH:
        return None
    return next((kind for kind, pattern in PATTERNS if pattern.search(text)), None)


def each_agrees(text: str) -> None:
    encoded = text.encode("utf-8")
    for index, (kind, pattern) in enumerate(PATTERNS):
        scanner = credentials._each(index)
        expected = pattern.search(text) is not None
        assert (scanner.search(encoded) is not None) == expected, (kind, pattern.pattern, text)
    assert credential_type(text) == python_type(text), text


KNOWN = [
    "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2,
    "glpat-" + "x" * 20,
    "glpat-" + "x" * 20 + "-",
    "glpat-" + "x" * 51,
    "glagent-" + "y" * 1024,
    "glagent-" + "y" * 1025,
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "postgres://app:s3cr3t-pass@db.internal:5432/app",
    "xoxb-123-456-abc",
    "XOXB-1-2-Z",
    "https://hooks.slack.com/services/T000/B000/XXXX",
    "sk_live_" + "a" * 24,
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
    "123456789:" + "A" * 35,
    "١٢٣٤٥٦٧٨٩:" + "A" * 35,  # Unicode digits: Python's \d, kept
    "//registry.npmjs.org/:_authToken=npm_abc",
    "AccountKey=" + "a" * 88,
    "SG." + "a" * 22 + "." + "b" * 43,
    "AC" + "a" * 32,
    ' AKC1234567890"',
    "AKC1234567890\n",
    "xAKC1234567890 ",
    'cloudant_password = "' + "a" * 24 + '"',
    'écloudant_password = "' + "a" * 24 + '"',  # é is a word character in Python
    "ibm_cos_secret_access_key: " + "a" * 48,
    "ibm_cos_secret_access_key: " + "a" * 49,
    "ibm_cos_secret_access_key: " + "A" * 48 + "G",
    "ibm_cloud_iam_key=" + "k" * 44,
    "ibm_cloud_iam_key=" + "k" * 45,
    "softlayer_api_key=" + "0" * 64,
    "https://api.softlayer.com/soap/v3.1/" + "a" * 64,
    "sq0csp-" + "\\" * 43,
    "pypi-AgEIcHlwaS5vcmc" + "a" * 70,
    "https://user:" + "f" * 64 + "@acct.cloudant.com",
    "M" + "a" * 24 + ".abcdef." + "b" * 27,
    "a" * 32 + "-us12",
    "sk-" + "a" * 20 + "T3BlbkFJ" + "b" * 20,
    "order-00001234 shipped",
    "//" + "/" * 2000,
]


@pytest.mark.parametrize("text", KNOWN, ids=range(len(KNOWN)))
def test_the_re2_scan_answers_as_detect_secrets_does(text):
    each_agrees(text)


def test_known_credentials_are_still_found():
    assert credential_type("AKIAIOSFODNN7EXAMPLE") == "AWS Access Key"
    assert credential_type("postgres://a:b-c@h/x") == "Basic Auth Credentials"
    assert credential_type("glagent-" + "y" * 1024) == "GitLab Token"
    assert credential_type("glagent-" + "y" * 1025) is None


# Pieces of the patterns, separators and Unicode look-alikes, joined at random.
PIECES = [
    *"aAfFzZ09_-+/=:\"'[] .@\n\t\u00a0\u00e9\u0663\u017f\u212a\ud800",
    "AKIA",
    "aws",
    "key",
    "pass",
    "token",
    "://",
    "//",
    "/:_authToken=",
    "npm_",
    "@",
    "AKC",
    "AP1",
    "xoxb-",
    "1-",
    "eyJ",
    "glpat-",
    "glcbt-",
    "ab_",
    "cloudant",
    "cl",
    "ibm",
    "cos",
    "secret_access_key",
    "iam",
    "api",
    "softlayer",
    "sl",
    "=>",
    "::",
    "https://",
    "hooks.slack.com/services/T",
    "/B",
    "sk_live_",
    "sk-",
    "T3BlbkFJ",
    "ghp_",
    "SG.",
    ".",
    "-us1",
    "AccountKey=",
    "BEGIN RSA PRIVATE KEY",
    "sq0csp-",
]
RUNS = st.builds(
    lambda char, count: char * count,
    st.sampled_from("aAf0Z_-/=:k1 "),
    st.sampled_from([20, 23, 24, 25, 27, 32, 35, 36, 40, 43, 44, 45, 48, 49, 50, 64, 70]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(PIECES), RUNS), max_size=12).map("".join))
def test_generated_text_gets_the_same_answer_from_both_engines(text):
    if "\ud800" in text:  # RE2 reads UTF-8: the scan replaces the surrogate first
        assert credential_type(text) == python_type(text.replace("\ud800", "\ufffd"))
        return
    each_agrees(text)


def test_text_with_unpaired_surrogates_is_scanned_not_refused():
    assert credential_type("\ud800 AKIAIOSFODNN7EXAMPLE") == "AWS Access Key"
    assert credential_type("\udfff" * 40) is None


def test_a_set_that_fails_is_confirmed_by_the_single_search(monkeypatch):
    """RE2 sets answer "no match" when their DFA runs out of memory: never trusted."""

    class OutOfMemory:
        def Match(self, text):
            return None

    monkeypatch.setattr(credentials, "_NAMES", OutOfMemory())
    assert credential_type("x postgres://app:s3cr3t@db/app") == "Basic Auth Credentials"
    assert credential_type("AKIAIOSFODNN7EXAMPLE") == "AWS Access Key"
    assert credential_type("nothing to see here") is None


@pytest.mark.parametrize(
    "pattern",
    [
        r"a(?!b)c",  # a lookahead something must follow
        r"(?<=x)abc(?<=c)",  # a lookbehind not at the start
        r"(a)\1",  # a backreference
        r"\bkey",  # Unicode word boundary
        r"(?m)^key$",
        r"[^\W\d]",
        r"(?=a)a",
    ],
)
def test_constructs_whose_meaning_would_change_are_refused(pattern):
    with pytest.raises(Untranslatable):
        to_re2(re.compile(pattern))


def test_every_detect_secrets_pattern_is_translated():
    assert len(TRANSLATED) == len(PATTERNS) > 40
    assert {kind for kind, _ in TRANSLATED} >= {"AWS Access Key", "Basic Auth Credentials"}


@pytest.mark.parametrize(
    "pattern",
    [
        r"key$",
        r"(?:\s|^)k\d{2}(?!\w)",
        r"(?:(?<=\W)|(?<=^))k[a-f]{2}(?![a-f])",
        r"(?i)[\w]{3}",
        r"(?i)\W\s\S\D",
    ],
)
@pytest.mark.parametrize(
    "text",
    [
        "key",
        "key\n",
        "key\n\n",
        "k12",
        " k12x",
        "xk12 ",
        "kab",
        "-KAB",
        "kabc",
        "\u00e9\u0663\u017f",
        "-\u00a0a-",
        "-\u2028٣b",
    ],
)
def test_the_translation_keeps_anchors_classes_and_lookarounds(pattern, text):
    python = re.compile(pattern)
    translated = credentials.re2.compile(to_re2(python))
    assert (translated.search(text) is not None) == (python.search(text) is not None)
