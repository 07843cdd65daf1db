import ipaddress
import re
from datetime import timedelta

from django.utils import timezone

from common.errors import WardenError
from common.scopes import WORKSPACE_ADMIN, unknown_scopes

TOOL_PATTERN_RE = re.compile(r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$")


def clean_scopes(scopes) -> list[str]:
    if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
        raise WardenError(
            "validation_error",
            "Scopes must be a list of strings.",
            {"scopes": ["Expected a list of strings."]},
        )
    bad = unknown_scopes(scopes)
    if bad:
        raise WardenError(
            "validation_error", "Unknown scopes.", {"scopes": [f"Unknown scope: {s}" for s in bad]}
        )
    return sorted(set(scopes))


def clean_tool_allowlist(patterns) -> list[str]:
    if not isinstance(patterns, list | tuple) or not all(isinstance(p, str) for p in patterns):
        raise WardenError(
            "validation_error",
            "Tool allowlist must be a list of strings.",
            {"tool_allowlist": ["Expected a list of strings."]},
        )
    bad = [p for p in patterns if not TOOL_PATTERN_RE.match(p)]
    if bad:
        raise WardenError(
            "validation_error",
            "Invalid tool patterns.",
            {"tool_allowlist": [f"Invalid pattern: {p}" for p in bad]},
        )
    return list(dict.fromkeys(patterns))


def clean_allowed_ips(cidrs) -> list[str]:
    if not isinstance(cidrs, list | tuple):
        raise WardenError(
            "validation_error",
            "allowed_ips must be a list of CIDRs.",
            {"allowed_ips": ["Expected a list."]},
        )
    cleaned = []
    for cidr in cidrs:
        try:
            cleaned.append(str(ipaddress.ip_network(str(cidr), strict=False)))
        except ValueError:
            raise WardenError(
                "validation_error", "Invalid CIDR.", {"allowed_ips": [f"Invalid CIDR: {cidr}"]}
            ) from None
    return cleaned


def ip_allowed(ip: str | None, cidrs: list[str]) -> bool:
    if not cidrs:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(c, strict=False) for c in cidrs)


UNATTENDED_MAX_LIFETIME = timedelta(days=90)


def check_unattended_allowed(*, scopes, expires_at, unattended_mode: bool, now=None) -> None:
    """Unattended keys skip confirmations, so they must be narrow and short-lived."""
    if not unattended_mode:
        return
    now = now or timezone.now()
    problems = []
    if WORKSPACE_ADMIN in (scopes or ()):
        problems.append("An unattended key may not hold workspace:admin.")
    if expires_at is None or expires_at > now + UNATTENDED_MAX_LIFETIME:
        problems.append("An unattended key must expire within 90 days.")
    if problems:
        raise WardenError("validation_error", problems[0], {"unattended_mode": problems})
