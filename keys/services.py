"""Machine-key lifecycle. The plaintext key exists only in the return value of
key_create/key_rotate; it is never stored, logged or audited."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauth2_provider.models import AccessToken, Grant, RefreshToken, get_application_model

from audit.events import EVENTS
from audit.models import AuditAction
from audit.services import audit_record_change
from common.actor import Actor
from common.errors import WardenError
from common.scopes import KEYS_WRITE, SCOPE_PERMISSION, has_scope
from keys import secrets as key_secrets
from keys.models import MachineKey
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
    # Shown once; never persisted. None when the secret waits for the key's owner to
    # claim it in their own session (a key made or rotated by someone else).
    plaintext: str | None

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


def _receives_secret(key: MachineKey, actor: Actor) -> bool:
    """The secret goes to the key's owner (or, for rotation, the key itself), never to
    someone who would then hold a key answerable to another person. Operators at a
    shell (system actors) are trusted like break-glass."""
    if actor.key is not None:
        return actor.key.pk == key.pk
    if actor.user is not None:
        return actor.user.pk == key.owner_id
    return True


def _refuse_wider_than_minter(
    *, minter: MachineKey, tool_allowlist, allowed_ips, expires_at, rate_limit_per_minute
) -> None:
    """A key minted by a key is bounded by it in every dimension (issue: no path around
    a human): allowlist, IP ranges, expiry and rate."""

    def covered(pattern: str) -> bool:
        for own in minter.tool_allowlist or ():
            if own == "*" or own == pattern:
                return True
            if own.endswith(".*") and pattern.startswith(own[:-1]):
                return True
            if "*" in own and "*" not in pattern and fnmatchcase(pattern, own):
                return True
        return False

    problems = {}
    wider = [p for p in tool_allowlist if not covered(p)]
    if wider:
        problems["tool_allowlist"] = [f"Wider than the minting key's allowlist: {p}" for p in wider]
    if minter.allowed_ips:
        own = [ipaddress.ip_network(c, strict=False) for c in minter.allowed_ips]
        if not allowed_ips:
            problems["allowed_ips"] = ["The minting key is limited to IP ranges; so is this one."]
        else:
            outside = [
                c
                for c in allowed_ips
                if not any(
                    (n := ipaddress.ip_network(c, strict=False)).version == o.version
                    and n.subnet_of(o)
                    for o in own
                )
            ]
            if outside:
                problems["allowed_ips"] = [
                    f"Outside the minting key's ranges: {c}" for c in outside
                ]
    if minter.expires_at is not None and (expires_at is None or expires_at > minter.expires_at):
        problems["expires_at"] = ["May not outlive the minting key."]
    if rate_limit_per_minute is not None and rate_limit_per_minute > minter.rate_limit_per_minute:
        problems["rate_limit_per_minute"] = ["May not exceed the minting key's rate limit."]
    if problems:
        field = next(iter(problems))
        raise WardenError("forbidden_by_scope", problems[field][0], problems)


def _refuse_weaker_actor(*, key: MachineKey, actor: Actor, verb: str) -> None:
    """Revoking, suspending or rotating a key needs at least that key's privileges."""
    if actor.key is None and actor.user is None:
        return
    if actor.key is not None and actor.key.pk == key.pk:
        return
    missing = scopes_actor_cannot_grant(actor=actor, workspace=key.workspace, scopes=key.scopes)
    if missing:
        raise WardenError(
            "forbidden_by_scope",
            f"You cannot {verb} a key holding {missing[0]}: you do not hold it yourself.",
            {"required_scope": missing[0], "scopes": missing},
        )


def check_mintable(*, workspace: Workspace, actor: Actor, fields: dict) -> None:
    """Refuse a key the actor could never hand out, before anyone is asked to approve
    it: unknown or escalated scopes, unattended rules, and (for a minting key) any
    dimension wider than its own."""
    scopes = clean_scopes(fields.get("scopes") or [])
    check_unattended_allowed(
        scopes=scopes,
        expires_at=fields.get("expires_at"),
        unattended_mode=bool(fields.get("unattended_mode")),
    )
    _refuse_escalation(actor=actor, workspace=workspace, scopes=scopes)
    if actor.key is not None:
        _refuse_wider_than_minter(
            minter=actor.key,
            tool_allowlist=clean_tool_allowlist(fields.get("tool_allowlist") or []),
            allowed_ips=clean_allowed_ips(fields.get("allowed_ips") or []),
            expires_at=fields.get("expires_at"),
            rate_limit_per_minute=fields.get("rate_limit_per_minute"),
        )


def _audit(key: MachineKey, actor: Actor, action: str, before: dict | None, reason: str = ""):
    event = EVENTS[action].change(
        target_id=key.pk, before=before, after=key.snapshot(), reason=reason
    )
    audit_record_change(event, workspace=key.workspace, actor=actor)


@transaction.atomic
@sensitive_variables("secret", "plaintext")
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
    extra_custody: list | None = None,
    reason: str = "",
    oauth_application_id: int | None = None,
) -> IssuedKey:
    """`extra_custody`: humans answerable besides the owner and creator (the proposer
    of a key that a second person approved, through approvals.door).
    `oauth_application_id`: an OAuth grant (keys.oauth): the owner's consent for that
    client. It has no secret; the client's access tokens act as it, and it replaces the
    owner's previous grant for the same client."""
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
    tool_allowlist = clean_tool_allowlist(tool_allowlist or [])
    allowed_ips = clean_allowed_ips(allowed_ips or [])
    if actor.key is not None:
        if rate_limit_per_minute is None:
            rate_limit_per_minute = min(
                actor.key.rate_limit_per_minute, settings.WARDEN_KEY_DEFAULT_RATE_PER_MINUTE
            )
        _refuse_wider_than_minter(
            minter=actor.key,
            tool_allowlist=tool_allowlist,
            allowed_ips=allowed_ips,
            expires_at=expires_at,
            rate_limit_per_minute=rate_limit_per_minute,
        )
    custody = {owner.pk, *(extra_custody or [])}
    if actor.user is not None:
        custody.add(actor.user.pk)
    if actor.key is not None:
        custody |= {actor.key.owner_id, *(actor.key.custody_user_ids or [])}
    application = None
    if oauth_application_id is not None:
        # Locked: two consents for the same client at once take turns, so the second
        # replaces the first's grant instead of colliding with it (one live grant per
        # client and owner is a constraint).
        application = (
            get_application_model()
            .objects.select_for_update()
            .filter(pk=oauth_application_id)
            .first()
        )
        if application is None:
            raise WardenError("validation_error", "This OAuth client is no longer registered.")
        replaced = MachineKey.objects.filter(
            oauth_application=application, owner=owner, revoked_at__isnull=True
        )
        for old in replaced:
            key_revoke(
                key=old, actor=actor, reason="replaced by a new OAuth consent", owner_left=True
            )
    key = MachineKey(
        workspace=workspace,
        name=name,
        owner=owner,
        created_by=actor.label,
        created_by_user=actor.user,
        minted_by=actor.key,
        custody_user_ids=sorted(custody),
        prefix=key_secrets.new_prefix(),
        scopes=scopes,
        tool_allowlist=tool_allowlist,
        expires_at=expires_at,
        allowed_ips=allowed_ips,
        unattended_mode=unattended_mode,
    )
    if rate_limit_per_minute is not None:
        key.rate_limit_per_minute = rate_limit_per_minute
    plaintext = None
    if application is not None:
        key.credential = MachineKey.Credential.OAUTH
        key.oauth_application = application
    elif _receives_secret(key, actor):
        secret = key_secrets.new_secret()
        key.digest = key_secrets.key_digest(secret)
        plaintext = key_secrets.format_key(key.prefix, secret)
    else:
        key.secret_pending = True
    key.save()
    _audit(key, actor, AuditAction.KEY_CREATED, None, reason=reason)
    return IssuedKey(key=key, plaintext=plaintext)


@transaction.atomic
@sensitive_variables("secret")
def key_claim_secret(*, key: MachineKey, actor: Actor) -> IssuedKey:
    """The owner, in their own session, takes the secret of a key someone else made
    or rotated for them. Shown once; the previous secret (if any) keeps its grace."""
    key = (
        MachineKey.objects.select_for_update(of=("self",))
        .select_related("workspace", "owner")
        .get(pk=key.pk)
    )
    if actor.user is None or actor.user.pk != key.owner_id:
        raise WardenError("not_found", "Not found.")
    if not key.secret_pending or key.revoked_at:
        raise WardenError("conflict", "This key has no secret waiting to be claimed.")
    before = key.snapshot()
    secret = key_secrets.new_secret()
    if key.digest:
        key.previous_digest = key.digest
        key.previous_valid_until = timezone.now() + settings.WARDEN_KEY_ROTATION_GRACE
    key.digest = key_secrets.key_digest(secret)
    key.secret_pending = False
    key.save(update_fields=["digest", "previous_digest", "previous_valid_until", "secret_pending"])
    _audit(key, actor, AuditAction.KEY_ROTATED, before, reason="secret claimed by its owner")
    return IssuedKey(key=key, plaintext=key_secrets.format_key(key.prefix, secret))


@transaction.atomic
@sensitive_variables("secret", "plaintext")
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
    if key.credential == MachineKey.Credential.OAUTH:
        raise WardenError(
            "conflict", "An OAuth grant has no secret to rotate: revoke it; the client reconnects."
        )
    _refuse_escalation(actor=actor, workspace=key.workspace, scopes=key.scopes)
    _refuse_weaker_actor(key=key, actor=actor, verb="rotate")
    before = key.snapshot()
    update = []
    if actor.user is not None and actor.user.pk not in (key.custody_user_ids or []):
        key.custody_user_ids = sorted({*(key.custody_user_ids or []), actor.user.pk})
        update.append("custody_user_ids")
    if not _receives_secret(key, actor):
        # The new secret goes to the owner's session; the current one keeps working
        # until they claim it (then for the usual grace).
        key.secret_pending = True
        key.save(update_fields=[*update, "secret_pending"])
        _audit(key, actor, AuditAction.KEY_ROTATED, before, reason="new secret awaits its owner")
        return IssuedKey(key=key, plaintext=None)
    secret = key_secrets.new_secret()
    key.previous_digest = key.digest if grace else ""
    key.previous_valid_until = timezone.now() + grace if grace else None
    key.digest = key_secrets.key_digest(secret)
    key.secret_pending = False
    key.save(
        update_fields=[
            *update,
            "digest",
            "previous_digest",
            "previous_valid_until",
            "secret_pending",
        ]
    )
    _audit(
        key,
        actor,
        AuditAction.KEY_ROTATED,
        before,
        reason=f"old secret valid for {int(grace.total_seconds())}s",
    )
    return IssuedKey(key=key, plaintext=key_secrets.format_key(key.prefix, secret))


@transaction.atomic
def key_revoke(
    *, key: MachineKey, actor: Actor, reason: str = "", owner_left: bool = False
) -> MachineKey:
    """`owner_left`: the revocation follows its owner's removal, which the remover was
    entitled to; it needs no privilege over the key itself."""
    key = (
        MachineKey.objects.select_for_update(of=("self",))
        .select_related("workspace", "owner")
        .get(pk=key.pk)
    )
    if not owner_left:
        _refuse_weaker_actor(key=key, actor=actor, verb="revoke")
    if key.revoked_at:
        return key  # idempotent: revoking twice changes nothing and records nothing
    before = key.snapshot()
    key.revoked_at = timezone.now()
    key.revoked_by = actor.label
    key.previous_digest = ""
    key.previous_valid_until = None
    key.save(update_fields=["revoked_at", "revoked_by", "previous_digest", "previous_valid_until"])
    oauth_tokens_revoke(key)
    _audit(key, actor, AuditAction.KEY_REVOKED, before, reason=reason)
    return key


def oauth_tokens_revoke(key: MachineKey) -> None:
    """End every access token, refresh token and pending code of an OAuth grant's client
    for the grant's owner (its key was revoked or replaced)."""
    if key.oauth_application_id is None:
        return
    scope = {"application_id": key.oauth_application_id, "user_id": key.owner_id}
    RefreshToken.objects.filter(**scope, revoked__isnull=True).update(revoked=timezone.now())
    AccessToken.objects.filter(**scope).delete()
    Grant.objects.filter(**scope).delete()


@transaction.atomic
def key_set_suspended(*, key: MachineKey, suspended: bool, actor: Actor, reason: str) -> MachineKey:
    key = (
        MachineKey.objects.select_for_update(of=("self",))
        .select_related("workspace", "owner")
        .get(pk=key.pk)
    )
    _refuse_weaker_actor(key=key, actor=actor, verb="suspend")
    if bool(key.suspended_at) == suspended:
        return key
    before = key.snapshot()
    key.suspended_at = timezone.now() if suspended else None
    key.save(update_fields=["suspended_at"])
    action = AuditAction.KEY_SUSPENDED if suspended else AuditAction.KEY_UNSUSPENDED
    _audit(key, actor, action, before, reason=reason)
    return key


@transaction.atomic
def key_set_unattended(
    *, key: MachineKey, unattended: bool, actor: Actor, reason: str = ""
) -> MachineKey:
    """Switch a key's unattended mode (it skips tools' confirmation rules; the floor
    still holds). Switching it on is governed: callers go through approvals.door."""
    key = (
        MachineKey.objects.select_for_update(of=("self",))
        .select_related("workspace", "owner")
        .get(pk=key.pk)
    )
    if key.revoked_at:
        raise WardenError("conflict", "A revoked key cannot be changed.")
    _refuse_weaker_actor(key=key, actor=actor, verb="change")
    if key.unattended_mode == unattended:
        return key
    before = key.snapshot()
    key.unattended_mode = unattended
    key.save(update_fields=["unattended_mode"])
    _audit(key, actor, AuditAction.KEY_UPDATED, before, reason=reason)
    return key


def key_touch(key: MachineKey, now: datetime) -> None:
    """Record use at most once a minute (one conditional UPDATE, no audit row)."""
    if key.last_used_at and now - key.last_used_at < timedelta(minutes=1):
        return
    MachineKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now


def keys_revoke_for_departed_member(*, user, workspace, actor: Actor, **kwargs) -> None:
    """Receiver of tenants.signals.member_removed. A key's owner answers for its agent;
    when they leave, their agents stop. Each revocation is its own audited change, in the
    removal's transaction."""
    owned = MachineKey.objects.filter(workspace=workspace, owner=user, revoked_at__isnull=True)
    for key in owned:
        key_revoke(key=key, actor=actor, reason="owner removed from the workspace", owner_left=True)
