"""Workspace and membership writes. Each change and its audit entry share a transaction."""

from __future__ import annotations

import copy
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from audit.events import EVENTS, TargetType
from audit.models import AuditAction
from audit.services import audit_record_change
from common.actor import Actor
from common.errors import WardenError
from common.scopes import WORKSPACE_ADMIN, has_scope
from tenants.models import (
    ROLE_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
    Invitation,
    Membership,
    Role,
    Workspace,
    WorkspaceGroupObjectPermission,
    role_group_name,
)
from tenants.signals import member_removed

User = get_user_model()

ADMIN_SITE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.APPROVER, Role.AUDITOR})
# Settings a plain update may change. Going live, enabling writes or outbound are
# gated by approvals.door (DESIGN.md: the platform's own dangerous operations).
WORKSPACE_SETTINGS = (
    "name",
    "writes_enabled",
    "mode",
    "live_after",
    "outbound_allowed",
    "confirmation_ttl",
    "require_two_approvals_for_irreversible",
    "plan_rank",
    "audit_retention_days",
    "sensitivity_floor",
    "plain_copy_retention_days",
)


def _create_role_groups(workspace: Workspace) -> None:
    """One guardian group per role, its object permissions on the workspace assigned
    here, once: a membership then only places the user in a group (two statements for
    any role, where copying the role's permissions to each member cost several per
    permission: an admin's membership_add went from 36 statements to 13)."""
    groups = Group.objects.bulk_create(
        [Group(name=role_group_name(workspace.pk, role)) for role in Role]
    )
    permissions = {
        p.codename: p
        for p in Permission.objects.filter(
            content_type=ContentType.objects.get_for_model(Workspace),
            codename__in=WORKSPACE_PERMISSIONS,
        )
    }
    WorkspaceGroupObjectPermission.objects.bulk_create(
        WorkspaceGroupObjectPermission(
            group=group, permission=permissions[codename], content_object=workspace
        )
        for role, group in zip(Role, groups, strict=True)
        for codename in sorted(ROLE_PERMISSIONS[role])
    )


def _join_role_group(membership: Membership) -> None:
    group = Group.objects.get(name=role_group_name(membership.workspace_id, membership.role))
    User.groups.through.objects.create(user_id=membership.user_id, group_id=group.pk)


def _leave_role_groups(membership: Membership) -> None:
    names = [role_group_name(membership.workspace_id, role) for role in Role]
    User.groups.through.objects.filter(user_id=membership.user_id, group__name__in=names).delete()


def _sync_staff_flag(user) -> None:
    """Admin-site access follows roles: members with only the `member` role get none."""
    needs_staff = (
        user.is_superuser
        or Membership.objects.filter(
            user=user, role__in=ADMIN_SITE_ROLES, workspace__deleted_at__isnull=True
        ).exists()
    )
    if user.is_staff != needs_staff:
        user.is_staff = needs_staff
        user.save(update_fields=["is_staff"])


def user_get_or_create(*, email: str, password: str | None = None):
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User(username=email, email=email)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    return user


@transaction.atomic
def workspace_create(*, slug: str, name: str, owner, actor: Actor, reason: str) -> Workspace:
    if Workspace.objects.filter(slug=slug).exists():
        raise WardenError("conflict", f"A workspace with slug {slug!r} exists.", {"slug": slug})
    workspace = Workspace.objects.create(slug=slug, name=name)
    _create_role_groups(workspace)
    event = EVENTS[AuditAction.WORKSPACE_CREATED].change(
        target_id=workspace.pk, before=None, after=workspace.settings_snapshot(), reason=reason
    )
    audit_record_change(event, workspace=workspace, actor=actor)
    membership_add(
        workspace=workspace,
        user=owner,
        role=Role.OWNER,
        actor=actor,
        reason=f"founding owner of {slug}: {reason}",
    )
    return workspace


# Called as hook(workspace=, before=, actor=, reason=) after a settings change, in its
# transaction; approvals fills it at start (a policy version per applied change).
SETTINGS_CHANGED_HOOKS: list = []


@transaction.atomic
def workspace_update(
    *, workspace: Workspace, actor: Actor, changes: dict, reason: str = ""
) -> Workspace:
    unknown = sorted(set(changes) - set(WORKSPACE_SETTINGS))
    if unknown:
        raise WardenError("validation_error", "Unknown workspace settings.", {"fields": unknown})
    workspace = Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)
    before = workspace.settings_snapshot()
    was = copy.copy(workspace)
    for field, value in changes.items():
        setattr(workspace, field, value)
    workspace.full_clean()
    workspace.save(update_fields=list(changes))
    event = EVENTS[AuditAction.WORKSPACE_SETTINGS_CHANGED].change(
        target_type=TargetType.WORKSPACE,
        target_id=workspace.pk,
        before=before,
        after=workspace.settings_snapshot(),
        reason=reason,
    )
    audit_record_change(event, workspace=workspace, actor=actor)
    for hook in SETTINGS_CHANGED_HOOKS:
        hook(workspace=workspace, before=was, actor=actor, reason=reason)
    return workspace


@transaction.atomic
def workspace_soft_delete(*, workspace: Workspace, actor: Actor, reason: str = "") -> Workspace:
    """Soft delete: the workspace and its keys stop resolving; evidence stays. Reached
    only through approvals.door (a confirmed, human-approved operation)."""
    workspace = Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)
    if workspace.deleted_at is not None:
        return workspace
    before = workspace.settings_snapshot()
    workspace.deleted_at = timezone.now()
    workspace.save(update_fields=["deleted_at"])
    event = EVENTS[AuditAction.WORKSPACE_DELETED].change(
        target_id=workspace.pk,
        before=before,
        after={**workspace.settings_snapshot(), "deleted_at": workspace.deleted_at.isoformat()},
        reason=reason,
    )
    audit_record_change(event, workspace=workspace, actor=actor)
    return workspace


def _lock_workspace(workspace_id) -> None:
    """Membership changes of one workspace take its row lock first, so they queue in one
    order: no deadlock between two owner changes, and each sees the one before it.
    NO KEY UPDATE, not UPDATE: foreign-key checks of concurrent audit inserts take KEY
    SHARE on this row, and a full UPDATE lock would deadlock with the chain-head lock."""
    list(Workspace.objects.select_for_update(no_key=True).filter(pk=workspace_id).values_list("pk"))


def _lock_membership(membership: Membership) -> Membership:
    _lock_workspace(membership.workspace_id)
    locked = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user", "workspace")
        .filter(pk=membership.pk)
        .first()
    )
    if locked is None:  # removed meanwhile by a concurrent request
        raise WardenError("not_found", "Not found.")
    return locked


def _locked_owner_count(workspace: Workspace) -> int:
    # Lock the owner rows so two concurrent demotions cannot both see "another owner".
    return len(
        list(
            Membership.objects.select_for_update()
            .filter(workspace=workspace, role=Role.OWNER)
            .values_list("pk", flat=True)
        )
    )


def _refuse_last_owner() -> WardenError:
    return WardenError(
        "last_owner",
        "A workspace must keep at least one owner; add another owner first.",
    )


def _refuse_owner_change_without_authority(*, actor: Actor, workspace: Workspace) -> None:
    """Granting, changing or removing the owner role takes an owner (or a
    `workspace:admin` key): `manage_members` alone must not reach `manage_workspace`."""
    if actor.key is not None:
        if has_scope(actor.key.scopes, WORKSPACE_ADMIN):
            return
        raise WardenError(
            "forbidden_by_scope",
            f"Changing owners needs the scope {WORKSPACE_ADMIN}.",
            {"required_scope": WORKSPACE_ADMIN},
        )
    if actor.user is not None:
        if actor.user.has_perm("tenants.manage_workspace", workspace):
            return
        raise WardenError(
            "forbidden_by_scope",
            "Only an owner may grant, change or remove the owner role.",
            {"required_scope": WORKSPACE_ADMIN, "required_permission": "manage_workspace"},
        )


def membership_precheck(
    *,
    workspace: Workspace,
    actor: Actor,
    role: str | None = None,
    user=None,
    membership: Membership | None = None,
    removing: bool = False,
) -> None:
    """The refusals of membership_add / change_role / remove, checked before a change
    is filed for approval (approvals.door): nobody approves what cannot be applied."""
    if role is not None and role not in Role.values:
        raise WardenError("validation_error", "Unknown role.", {"role": [f"{role!r}"]})
    if user is not None and Membership.objects.filter(workspace=workspace, user=user).exists():
        raise WardenError("conflict", "This user is already a member.", {"email": user.email})
    touches_owner = role == Role.OWNER or (membership is not None and membership.role == Role.OWNER)
    if touches_owner and not (membership is not None and membership.role == role):
        _refuse_owner_change_without_authority(actor=actor, workspace=workspace)
    leaves_owner = removing or (role is not None and role != Role.OWNER)
    if (
        membership is not None
        and membership.role == Role.OWNER
        and leaves_owner
        and Membership.objects.filter(workspace=workspace, role=Role.OWNER).count() <= 1
    ):
        raise _refuse_last_owner()


@transaction.atomic
def membership_add(
    *, workspace: Workspace, user, role: str, actor: Actor, reason: str = ""
) -> Membership:
    if role not in Role.values:
        raise WardenError("validation_error", "Unknown role.", {"role": [f"{role!r}"]})
    if role == Role.OWNER:
        _refuse_owner_change_without_authority(actor=actor, workspace=workspace)
    _lock_workspace(workspace.pk)  # two concurrent adds of one user: a conflict, not a 500
    if Membership.objects.filter(workspace=workspace, user=user).exists():
        raise WardenError("conflict", "This user is already a member.", {"email": user.email})
    membership = Membership.objects.create(workspace=workspace, user=user, role=role)
    _join_role_group(membership)
    _sync_staff_flag(user)
    event = EVENTS[AuditAction.MEMBER_ADDED].change(
        target_id=membership.pk, before=None, after=membership.snapshot(), reason=reason
    )
    audit_record_change(event, workspace=workspace, actor=actor)
    return membership


@transaction.atomic
def membership_change_role(
    *, membership: Membership, role: str, actor: Actor, reason: str = ""
) -> Membership:
    if role not in Role.values:
        raise WardenError("validation_error", "Unknown role.", {"role": [f"{role!r}"]})
    membership = _lock_membership(membership)
    if membership.role == role:
        return membership
    if Role.OWNER in (membership.role, role):
        _refuse_owner_change_without_authority(actor=actor, workspace=membership.workspace)
    if membership.role == Role.OWNER and _locked_owner_count(membership.workspace) <= 1:
        raise _refuse_last_owner()
    before = membership.snapshot()
    membership.role = role
    membership.save(update_fields=["role"])
    _leave_role_groups(membership)
    _join_role_group(membership)
    _sync_staff_flag(membership.user)
    event = EVENTS[AuditAction.MEMBER_ROLE_CHANGED].change(
        target_id=membership.pk, before=before, after=membership.snapshot(), reason=reason
    )
    audit_record_change(event, workspace=membership.workspace, actor=actor)
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor, reason: str = "") -> None:
    membership = _lock_membership(membership)
    if membership.role == Role.OWNER:
        _refuse_owner_change_without_authority(actor=actor, workspace=membership.workspace)
    if membership.role == Role.OWNER and _locked_owner_count(membership.workspace) <= 1:
        raise _refuse_last_owner()
    before = membership.snapshot()
    pk = membership.pk
    _leave_role_groups(membership)
    membership.delete()
    _sync_staff_flag(membership.user)
    event = EVENTS[AuditAction.MEMBER_REMOVED].change(
        target_id=pk, before=before, after=None, reason=reason
    )
    audit_record_change(event, workspace=membership.workspace, actor=actor)
    member_removed.send(
        sender=Membership, user=membership.user, workspace=membership.workspace, actor=actor
    )


# --- invitations ----------------------------------------------------------------------

INVITATION_TTL = timedelta(days=7)
INVITABLE_ROLES = frozenset({Role.MEMBER, Role.APPROVER, Role.AUDITOR})


def needs_invitation(*, user, workspace: Workspace) -> bool:
    """A person who already belongs to another workspace consents before joining."""
    return (
        Membership.objects.filter(user=user).exclude(workspace=workspace).exists()
        or Invitation.objects.filter(user=user).exclude(workspace=workspace).exists()
    )


def invitation_precheck(*, workspace: Workspace, user, role: str) -> None:
    """What would refuse the invitation, checked before anyone is asked to approve it."""
    if role not in INVITABLE_ROLES:
        raise WardenError(
            "validation_error",
            "Invite as member, approver or auditor; raise the role once they have joined.",
            {"role": [f"Not invitable: {role}"]},
        )
    if Membership.objects.filter(workspace=workspace, user=user).exists():
        raise WardenError("conflict", "This user is already a member.", {"email": user.email})
    open_ones = Invitation.objects.filter(
        workspace=workspace, user=user, accepted_at__isnull=True, declined_at__isnull=True
    ).filter(expires_at__gt=timezone.now())
    if open_ones.exists():
        raise WardenError("conflict", "This user is already invited.", {"email": user.email})


@transaction.atomic
def invitation_create(
    *, workspace: Workspace, user, role: str, actor: Actor, reason: str = ""
) -> Invitation:
    invitation_precheck(workspace=workspace, user=user, role=role)
    _lock_workspace(workspace.pk)
    invitation_precheck(workspace=workspace, user=user, role=role)
    invitation = Invitation.objects.create(
        workspace=workspace,
        user=user,
        role=role,
        invited_by=actor.label,
        expires_at=timezone.now() + INVITATION_TTL,
    )
    event = EVENTS[AuditAction.MEMBER_INVITED].change(
        target_id=invitation.pk, before=None, after=invitation.snapshot(), reason=reason
    )
    audit_record_change(event, workspace=workspace, actor=actor)
    return invitation


@transaction.atomic
def invitation_answer(*, invitation: Invitation, accept: bool, actor: Actor) -> Invitation:
    """The invited person, in their own session, accepts or declines."""
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("workspace", "user")
        .get(pk=invitation.pk)
    )
    if actor.user is None or actor.user.pk != invitation.user_id:
        raise WardenError("not_found", "Not found.")
    if not invitation.is_open:
        raise WardenError("conflict", "This invitation is no longer open.")
    now = timezone.now()
    if accept:
        invitation.accepted_at = now
        invitation.save(update_fields=["accepted_at"])
        membership_add(
            workspace=invitation.workspace,
            user=invitation.user,
            role=invitation.role,
            actor=actor,
            reason=f"accepted the invitation by {invitation.invited_by}",
        )
    else:
        invitation.declined_at = now
        invitation.save(update_fields=["declined_at"])
        event = EVENTS[AuditAction.MEMBER_INVITATION_DECLINED].change(
            target_id=invitation.pk,
            before=invitation.snapshot(),
            after=None,
            reason="declined by the invited person",
        )
        audit_record_change(event, workspace=invitation.workspace, actor=actor)
    return invitation
