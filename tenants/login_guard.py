"""Guessing resistance for human logins (docs: "Login and key-guessing policy").

Failed logins are counted per account (the username as typed, case-folded, whether or
not such an account exists) and per client address. While either budget is used up
the login form refuses every attempt with one message, the right password included,
without checking the password: the answer is the same for an existing and a
non-existing account, and a throttled address does not affect other addresses.

Crossing a threshold is a security event: once per window, an audit entry
`security.login_throttled` in each workspace of the account (when it exists), or a
log line when no workspace is known (an address, an unknown account)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from audit.events import EVENTS
from audit.models import AuditAction
from audit.services import audit_record
from common.actor import Actor
from common.attempts import Counter, add_failures, exhausted
from tenants.models import Membership

logger = logging.getLogger("warden.security")
ACTOR_LABEL = "system:login-guard"
LOCKOUT_MESSAGE = (
    "Too many failed sign-in attempts. Sign-in is paused for a while; try again later."
)


def _account(username: str) -> str:
    return (username or "").strip().casefold()


def _counters(username: str, ip: str | None) -> list[Counter]:
    window = settings.WARDEN_LOGIN_WINDOW_SECONDS
    counters = [
        Counter(
            "login-account",
            _account(username),
            settings.WARDEN_LOGIN_MAX_FAILURES_PER_ACCOUNT,
            window,
        )
    ]
    if ip:
        counters.append(
            Counter("login-ip", ip, settings.WARDEN_LOGIN_MAX_FAILURES_PER_ADDRESS, window)
        )
    return counters


def login_blocked(*, username: str, ip: str | None) -> int | None:
    """Seconds until a login for this account from this address may be tried again,
    or None when it may be tried now."""
    return exhausted(_counters(username, ip))


def login_failed(*, username: str, ip: str | None, request_id: str = "") -> None:
    """Counts one failed login; reports each budget that it exhausts."""
    for counter in add_failures(_counters(username, ip), time.time()):
        _report(counter, username=username, ip=ip, request_id=request_id)


def _report(counter: Counter, *, username: str, ip: str | None, request_id: str) -> None:
    subject = "account" if counter.kind == "login-account" else "address"
    logger.warning(
        "Login throttled: %s reached %d failures in %ds (address %s)",
        subject,
        counter.limit,
        counter.window_seconds,
        ip,
    )
    if subject != "account":
        return
    user_model = get_user_model()
    lookup = {f"{user_model.USERNAME_FIELD}__iexact": _account(username)}
    memberships = Membership.objects.filter(
        user__in=user_model._default_manager.filter(**lookup),
        workspace__deleted_at__isnull=True,
    ).select_related("workspace", "user")
    actor = Actor(ACTOR_LABEL, request_id=request_id, client_ip=ip)
    for membership in memberships:
        with transaction.atomic():
            event = EVENTS[AuditAction.SECURITY_LOGIN_THROTTLED].event(
                target_id=membership.user_id,
                input={
                    "throttled": "account",
                    "failures": counter.limit,
                    "window_seconds": counter.window_seconds,
                },
                decision="throttled",
                rationale=(
                    f"{counter.limit} failed sign-ins for this account within "
                    f"{counter.window_seconds}s; sign-in is paused until the window ends."
                ),
                outcome="throttled",
            )
            audit_record(event, workspace=membership.workspace, actor=actor)
