"""A connector tool has three names; only one of them says what runs.

- upstream name: the connector's own name for the tool, verbatim (any characters the
  upstream uses: `list-tickets`, `getTicket`, unicode). Recorded once at import in
  `Tool.upstream_name` and the only name Warden ever sends upstream.
- catalog name: `<connector>.<segment>`, lowercase dotted (approvals.validation),
  derived once at import by `catalog_segment`. Renaming it changes what allowlists and
  rules match, never what runs.
- exposed name: what MCP clients see in tools/list, matching `^[a-zA-Z0-9_-]{1,64}$`
  (the OpenAI and Anthropic function-name pattern): the catalog name with every dot
  made a hyphen (`crm.list_tickets` -> `crm-list_tickets`). Catalog names hold no
  hyphens, so this is one-to-one and reversible. A name longer than 64 characters
  becomes its first 52 characters, `--` and the first 10 hex digits of the SHA-256 of
  the catalog name; direct names never hold `--`, so the two forms never collide.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

CATALOG_SEGMENT = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
PORTABLE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_PORTABLE = 64
MAX_SEGMENT = 100
_HASHED = "--"


def _sha(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def catalog_prefix(connector_name: str) -> str:
    """Connector names may hold hyphens; catalog names may not."""
    return connector_name.replace("-", "_")


def catalog_segment(upstream_name: str) -> str:
    """The catalog's segment for an upstream tool: the name itself when it is already a
    lowercase dotted name, else a readable ASCII form (`list-tickets` -> `list_tickets`,
    `getTicket` -> `get_ticket`)."""
    if CATALOG_SEGMENT.fullmatch(upstream_name) and len(upstream_name) <= MAX_SEGMENT:
        return upstream_name
    text = unicodedata.normalize("NFKD", upstream_name).encode("ascii", "ignore").decode()
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:MAX_SEGMENT]
    return text or f"tool_{_sha(upstream_name, 8)}"


def disambiguated(segment: str, upstream_name: str) -> str:
    """The segment when it is taken: a suffix derived from the verbatim upstream name."""
    return f"{segment[: MAX_SEGMENT - 9]}_{_sha(upstream_name, 8)}"


def exposed_name(catalog_name: str) -> str:
    direct = catalog_name.replace(".", "-")
    if len(direct) <= MAX_PORTABLE:
        return direct
    return f"{direct[:52]}{_HASHED}{_sha(catalog_name, 10)}"


def catalog_name(name: str, listed=None) -> str:
    """The catalog name a tools/call means: catalog names pass through, exposed names
    map back. `listed`: a callable giving the key's callable catalog names, consulted
    only for a shortened (hashed) exposed name."""
    if "-" not in name:
        return name
    if _HASHED not in name:
        return name.replace("-", ".")
    for candidate in listed() if listed is not None else ():
        if exposed_name(candidate) == name:
            return candidate
    return name
