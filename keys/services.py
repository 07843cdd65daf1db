"""Machine-key lifecycle. The plaintext key exists only in the return value of
key_create/key_rotate; it is never stored, logged or audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditAction
from audit.services import audit_record_change
from common.actor import Actor
from common.errors import WardenError
from keys import secrets as key_secrets
from keys.models import MachineKey
from keys.scopes import KEYS_WRITE, SCOPE_PERMISSION, has_scope
from keys.validation import (
    check_unattended_allowed,
    clean_allowed_ips,
    clean_scopes,
    clean_tool_allowlist,
)
from tenants.models import Membership, Workspace
from tenants.selectors import user_can

MAX_ROTATION_GRACE = timedelta(days=7)


@dataclass(frozen=True)
class IssuedKey:
    key: MachineKey
    plaintext: str  # shown once; never persisted

    def __repr__(self) -> str:  # keep the secret out of reprs, logs and tracebacks
        return f"IssuedKey(key={self.key.pk}, plaintext='***')"


def scopes_actor_cannot_grant(*, actor: Actor, workspace: Workspace, scopes) -> list[str]:
    """Scopes beyond the actor's own authority. A credential may hand out only the
    control-plane scopes it holds: a key its own scopes, a human what their role's
    permissions cover; the agent scopes `actions:*` come with `keys:write` (humans:
    `manage_keys`). Without this, `keys:write` mints a `workspace:admin` key, or rotates
    one to read its new secret. System actors (commands, tasks) are trusted."""
    if actor.key is not None:
        held = actor.key.scopes
        return sorted(
            s
            for s in scopes
            if not has_scope(held, s)
            and not (SCOPE_PERMISSION.get(s) is None and has_scope(held, KEYS_WRITE))
        )
    if actor.user is not None:
        return sorted(
            s
            for s in scopes
            if not user_can(actor.user, SCOPE_PERMISSION.get(s) or "manage_keys", workspace)
        )
    return []


def _refuse_escalation(*, actor: Actor, workspace: Workspace, scopes) -> None:
    missing = scopes_actor_cannot_grant(actor=actor, workspace=workspace, scopes=scopes)
    if missing:
        raise WardenError(
            "forbidden_by_scope",
            f"You cannot hand out the scope {missing[0]}: you do not hold it yourself.",
            {"required_scope": missing[0], "scopes": missing},
        )


def _audit(key: MachineKey, actor: Actor, action: str, before: dict | None, reason: str = ""):
    audit_record_change(
        workspace=key.workspace,
        actor=actor,
        action=action,
        target_type="machine_key",
        target_id=key.pk,
        before=before,
        after=key.snapshot(),
        reason=reason,
    )


@transaction.atomic
@sensitive_variables("secret")
def key_create(
    *,
    workspace: Workspace,
    name: str,
    owner,
    scopes: list[str],
    tool_allowlist: list[str] | None = None,
    expires_at: datetime | None = None,
    allowed_ips: list[str] | None = None,
    rate_limit_per_minute: int | None = None,
    unattended_mode: bool = False,
    actor: Actor,
) -> IssuedKey:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise WardenError(
            "validation_error",
            "A key needs a name (1-100 characters).",
            {"name": ["This field is required."]},
        )
    if not Membership.objects.filter(workspace=workspace, user=owner).exists():
        raise WardenError(
            "validation_error",
            "The key's owner must be a workspace member.",
            {"owner": ["Not a member of this workspace."]},
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise WardenError(
            "validation_error",
            "expires_at must be in the future.",
            {"expires_at": ["Must be in the future."]},
        )
    if rate_limit_per_minute is not None and not 1 <= rate_limit_per_minute <= 100_000:
        raise WardenError(
            "validation_error",
            "rate_limit_per_minute must be 1-100000.",
            {"rate_limit_per_minute": ["Out of range."]},
        )
    scopes = clean_scopes(scopes)
    check_unattended_allowed(scopes=scopes, expires_at=expires_at, unattended_mode=unattended_mode)
    _refuse_escalation(actor=actor, workspace=workspace, scopes=scopes)
    secret = key_secrets.new_secret()
    key = MachineKey(
        workspace=workspace,
        name=name,
        owner=owner,
        created_by=actor.label,
        prefix=key_secrets.new_prefix(),
        digest=key_secrets.digest(secret),
        scopes=scopes,
        tool_allowlist=clean_tool_allowlist(tool_allowlist or []),
        expires_at=expires_at,
        allowed_ips=clean_allowed_ips(allowed_ips or []),
        unattended_mode=unattended_mode,
    )
    if rate_limit_per_minute is not None:
        key.rate_limit_per_minute = rate_limit_per_minute
    key.save()
    _audit(key, actor, AuditAction.KEY_CREATED, None)
    return IssuedKey(key=key, plaintext=key_secrets.format_key(key.prefix, secret))


@transaction.atomic
@sensitive_variables("secret")
def key_rotate(*, key: MachineKey, actor: Actor, grace: timedelta | None = None) -> IssuedKey:
    """New secret now; the old one keeps working for `grace` (default 24 h, max 7 days)."""
    grace = settings.WARDEN_KEY_ROTATION_GRACE if grace is None else grace
    if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
        raise WardenError(
            "validation_error",
            "Grace must be between 0 and 7 days.",
            {"grace_seconds": ["Out of range."]},
        )
    key = (
        MachineKey.objects.select_for_update(of=("self",))
        .select_related("workspace", "owner")
        .get(pk=key.pk)
    )
    if key.revoked_at:
        raise WardenError("conflict", "A revoked key cannot be rotated.")
    _refuse_escalation(actor=actor, workspace=key.workspace, scopes=key.scopes)
    before = key.snapshot()
    secret = key_secrets.new_secret()
    key.previous_digest = key.digest if grace else ""
    key.previous_valid_until = timezone.now() + grace if grace else None
    key.digest = key_secrets.digest(secret)
    key.save(update_fields=["digest", "previous_digest", "previous_valid_until"])
    _audit(
        key,
        actor,
        AuditAction.KEY_ROTATED,
        before,
        reason=f"old secret valid for {int(grace.total_seconds())}s",
    )
    return IssuedKey(key=key, plaintext=key_secrets.format_key(key.prefix, secret))


@transaction.atomic
def key_revoke(*, key: MachineKey, actor: Actor, reason: str = "") -> MachineKey:
    key = (
        MachineKey.objects.select_for_update(of=("self",))
        .select_related("workspace", "owner")
        .get(pk=key.pk)
    )
    if key.revoked_at:
        return key  # idempotent: revoking twice changes nothing and records nothing
    before = key.snapshot()
    key.revoked_at = timezone.now()
    key.revoked_by = actor.label
    key.previous_digest = ""
    key.previous_valid_until = None
    key.save(update_fields=["revoked_at", "revoked_by", "previous_digest", "previous_valid_until"])
    _audit(key, actor, AuditAction.KEY_REVOKED, before, reason=reason)
    return key


@transaction.atomic
def key_set_suspended(*, key: MachineKey, suspended: bool, actor: Actor, reason: str) -> MachineKey:
    key = (
        MachineKey.objects.select_for_update(of=("self",))
        .select_related("workspace", "owner")
        .get(pk=key.pk)
    )
    if bool(key.suspended_at) == suspended:
        return key
    before = key.snapshot()
    key.suspended_at = timezone.now() if suspended else None
    key.save(update_fields=["suspended_at"])
    action = AuditAction.KEY_SUSPENDED if suspended else AuditAction.KEY_UNSUSPENDED
    _audit(key, actor, action, before, reason=reason)
    return key


def key_touch(key: MachineKey, now: datetime) -> None:
    """Record use at most once a minute (one conditional UPDATE, no audit row)."""
    if key.last_used_at and now - key.last_used_at < timedelta(minutes=1):
        return
    MachineKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now
