"""Is this text shaped like a credential? The pattern detectors of `detect-secrets`
(Yelp, Apache-2.0): provider key formats (AWS, GitHub, GitLab, Slack, Stripe, OpenAI,
npm, PyPI, SendGrid, Twilio, ...), private-key blocks, JSON Web Tokens and URLs with
a password in them. Entropy and keyword detectors are left out on purpose: on
structured parameters they flag order numbers, hashes and UUIDs, which are not
secrets."""

from __future__ import annotations

import re

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector

# Shorter text cannot hold any of the detected formats.
MIN_LENGTH = 12
# Detectors that find things that are not credentials.
_NOT_CREDENTIALS = frozenset({"Public IP (ipv4)"})


def _patterns() -> tuple[tuple[str, re.Pattern], ...]:
    found = []
    for secret_type, plugin in sorted(get_mapping_from_secret_type_to_class().items()):
        if not issubclass(plugin, RegexBasedDetector) or secret_type in _NOT_CREDENTIALS:
            continue
        found.extend((secret_type, pattern) for pattern in plugin().denylist)
    return tuple(found)


PATTERNS = _patterns()


def credential_type(text: str) -> str | None:
    """The kind of credential `text` contains (e.g. "AWS Access Key"), or None."""
    if len(text) < MIN_LENGTH:
        return None
    for secret_type, pattern in PATTERNS:
        if pattern.search(text):
            return secret_type
    return None
