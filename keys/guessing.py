"""Guessing resistance for machine keys (docs: "Login and key-guessing policy").

Failed key authentications are counted per client address and per key prefix in the
Django cache. Once either budget is used up for the window, the caller is answered
`429 rate_limited` with `Retry-After` before the key is even looked up, so a guesser
learns nothing more and costs us one cache read. Only guessing counts as a failure
(unknown key, wrong secret, malformed key, key used from a disallowed address); a
revoked or expired key presented with its right secret does not.

Crossing a threshold is a security event: once per window, an audit entry
`security.key_guessing_throttled` in the workspace of the key the prefix belongs to,
or a log line when no workspace is known (an address, an unknown prefix)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction
from rest_framework.exceptions import Throttled

from audit.events import EVENTS
from audit.models import AuditAction
from audit.services import audit_record
from common.actor import Actor
from common.attempts import Counter, add_failures, exhausted
from keys.models import MachineKey

logger = logging.getLogger("warden.security")
ACTOR_LABEL = "system:key-guard"


class KeyGuessingThrottled(Throttled):
    default_detail = "Too many failed authentications; retry later."


def _counters(ip: str | None, prefix: str | None) -> list[Counter]:
    window = settings.WARDEN_KEY_GUESS_WINDOW_SECONDS
    counters = []
    if ip:
        counters.append(Counter("key-ip", ip, settings.WARDEN_KEY_GUESS_MAX_PER_ADDRESS, window))
    if prefix:
        counters.append(
            Counter("key-prefix", prefix, settings.WARDEN_KEY_GUESS_MAX_PER_PREFIX, window)
        )
    return counters


def refuse_if_throttled(*, ip: str | None, prefix: str | None) -> None:
    """Raises a 429 (with Retry-After) while the address or the prefix is throttled."""
    wait = exhausted(_counters(ip, prefix))
    if wait is not None:
        raise KeyGuessingThrottled(wait=wait)


def record_failure(*, ip: str | None, prefix: str | None, request_id: str = "") -> None:
    """Counts one failed authentication; reports each budget that it exhausts."""
    now = time.time()
    for counter in add_failures(_counters(ip, prefix), now):
        _report(counter, ip=ip, prefix=prefix, request_id=request_id)


def _report(counter: Counter, *, ip: str | None, prefix: str | None, request_id: str) -> None:
    subject = "address" if counter.kind == "key-ip" else "prefix"
    logger.warning(
        "Key guessing throttled: %s reached %d failures in %ds (address %s, prefix %s)",
        subject,
        counter.limit,
        counter.window_seconds,
        ip,
        prefix,
    )
    if subject != "prefix":
        return
    key = MachineKey.objects.select_related("workspace").filter(prefix=prefix).first()
    if key is None:
        return
    with transaction.atomic():
        event = EVENTS[AuditAction.SECURITY_KEY_GUESSING_THROTTLED].event(
            target_id=key.pk,
            input={
                "throttled": "prefix",
                "prefix": prefix,
                "failures": counter.limit,
                "window_seconds": counter.window_seconds,
            },
            decision="throttled",
            rationale=(
                f"{counter.limit} failed authentications with this key's prefix within "
                f"{counter.window_seconds}s; further attempts are refused until the window ends."
            ),
            outcome="throttled",
        )
        actor = Actor(ACTOR_LABEL, request_id=request_id, client_ip=ip)
        audit_record(event, workspace=key.workspace, actor=actor)
