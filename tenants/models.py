import uuid
from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from common.guarded import GuardedQuerySet


def default_live_after():
    return timezone.now() + timedelta(days=settings.WARDEN_DRY_RUN_DAYS)


class WorkspaceQuerySet(GuardedQuerySet):
    def active(self):
        return self.filter(deleted_at__isnull=True)


class Workspace(models.Model):
    """A tenant. Safety settings default to the safest value (DESIGN.md 5, 6)."""

    class Mode(models.TextChoices):
        DRY_RUN = "dry_run", "Dry run"
        LIVE = "live", "Live"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    writes_enabled = models.BooleanField(default=False)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.DRY_RUN)
    # End of the planned dry-run period. Going live stays an explicit, confirmed
    # change (DESIGN.md 6): nothing flips to live on its own.
    live_after = models.DateTimeField(default=default_live_after)
    outbound_allowed = models.BooleanField(default=False)
    confirmation_ttl = models.DurationField(default=timedelta(hours=24))
    require_two_approvals_for_irreversible = models.BooleanField(default=False)
    # Example workspace attribute for CEL conditions (`workspace.plan_rank`).
    plan_rank = models.PositiveSmallIntegerField(default=0)
    # The sensitivity floor (DESIGN.md 10): irreversible actions and writes on sensitive
    # data always reach a human. Switching it off is a governed operation.
    sensitivity_floor = models.BooleanField(default=True)
    # Audit retention in days; null keeps audit rows forever.
    audit_retention_days = models.PositiveIntegerField(null=True, blank=True)
    # Data minimisation: days the plain copies of action parameters and outputs are
    # kept before pruning replaces them by their digest (approvals.minimisation).
    # Digests and sizes are kept forever; null keeps plain copies forever too.
    plain_copy_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=30,
        validators=[MaxValueValidator(36500)],
        help_text="Days plain copies of action parameters and outputs are kept; their "
        "SHA-256 digest and size are kept forever. Empty: keep plain copies forever.",
    )
    # Bumped on every tool-catalog change; recorded on each decision.
    policy_version = models.PositiveIntegerField(default=1, editable=False)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        permissions = [
            ("manage_workspace", "Manage workspace settings"),
            ("manage_members", "Manage members"),
            ("manage_keys", "Manage machine keys"),
            ("manage_tools", "Manage the tool catalog"),
            ("approve_actions", "Approve or deny agent actions"),
            ("view_audit", "View audit evidence"),
            ("download_privacy_summary", "Download the privacy summary"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_dry_run(self) -> bool:
        return self.mode == self.Mode.DRY_RUN

    def settings_snapshot(self) -> dict:
        """The safety settings as JSON, for version logs and audit rows."""
        return {
            "name": self.name,
            "writes_enabled": self.writes_enabled,
            "mode": self.mode,
            "live_after": self.live_after.isoformat() if self.live_after else None,
            "outbound_allowed": self.outbound_allowed,
            "confirmation_ttl_seconds": int(self.confirmation_ttl.total_seconds()),
            "require_two_approvals_for_irreversible": self.require_two_approvals_for_irreversible,
            "plan_rank": self.plan_rank,
            "audit_retention_days": self.audit_retention_days,
            "plain_copy_retention_days": self.plain_copy_retention_days,
            "sensitivity_floor": self.sensitivity_floor,
            "deleted": self.deleted_at is not None,
        }


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    APPROVER = "approver", "Approver"
    AUDITOR = "auditor", "Auditor"
    MEMBER = "member", "Member"


# What each role may do, as guardian object permissions on the workspace. This is
# the only place roles are interpreted; everything else asks guardian.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(
        {
            "manage_workspace",
            "manage_members",
            "manage_keys",
            "manage_tools",
            "approve_actions",
            "view_audit",
            "download_privacy_summary",
        }
    ),
    Role.ADMIN: frozenset(
        {
            "manage_members",
            "manage_keys",
            "manage_tools",
            "approve_actions",
            "view_audit",
            "download_privacy_summary",
        }
    ),
    Role.APPROVER: frozenset({"approve_actions"}),
    Role.AUDITOR: frozenset({"view_audit", "download_privacy_summary"}),
    Role.MEMBER: frozenset(),
}
WORKSPACE_PERMISSIONS: frozenset[str] = ROLE_PERMISSIONS[Role.OWNER]


def role_group_name(workspace_id, role: str) -> str:
    """The guardian group of one role in one workspace. Its permissions are assigned
    once, when the workspace is created; a membership is a place in one such group."""
    return f"workspace:{workspace_id}:{role}"


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = GuardedQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    def snapshot(self) -> dict:
        return {"user": self.user.email, "role": self.role}


class WorkspaceUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian table for per-user grants. Roles never write here (they are
    group permissions); guardian still reads it, so it stays direct-FK and empty."""

    content_object = models.ForeignKey(Workspace, on_delete=models.CASCADE)


class WorkspaceGroupObjectPermission(GroupObjectPermissionBase):
    """Direct-FK guardian table holding what each role group may do in its workspace
    (STYLE.md: fast lookups, no orphans)."""

    content_object = models.ForeignKey(Workspace, on_delete=models.CASCADE)


class Invitation(models.Model):
    """An existing user of another workspace is invited, never attached: they accept
    (or decline) in their own session."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    invited_by = models.CharField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "accepted_at", "declined_at"])]

    def __str__(self) -> str:
        return f"invitation of {self.user} to {self.workspace} ({self.role})"

    @property
    def is_open(self) -> bool:
        return (
            self.accepted_at is None
            and self.declined_at is None
            and self.expires_at > timezone.now()
        )

    def snapshot(self) -> dict:
        return {
            "user": self.user.email,
            "role": self.role,
            "expires_at": self.expires_at.isoformat(),
        }
