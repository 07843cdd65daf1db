"""Characters no database column can hold: NUL (PostgreSQL text and jsonb refuse it,
a 500 wherever it reaches a query) and unpaired surrogates (not encodable as UTF-8,
so neither storable nor renderable as JSON)."""

import re

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable(text: str) -> bool:
    return UNSTORABLE.search(text) is not None


def strip_unstorable(text: str) -> str:
    return UNSTORABLE.sub("", text)
