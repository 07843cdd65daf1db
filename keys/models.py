import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from common.guarded import GuardedQuerySet
from tenants.models import Workspace


class MachineKey(models.Model):
    """An agent credential. Only the prefix and an HMAC-SHA-256 digest of the secret
    are stored; the full key `wdn_<prefix>_<secret>` is shown once, at creation.

    An OAuth grant (credential "oauth") is a key without a secret: a human's consent
    for an MCP client created it, and that client's access tokens resolve to it
    (keys.oauth), so every check of a key applies to them unchanged."""

    class Credential(models.TextChoices):
        SECRET = "secret", "Secret (wdn_…)"
        OAUTH = "oauth", "OAuth grant"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_keys",
        help_text="The human responsible for the agent; may never approve its requests.",
    )
    created_by = models.CharField(max_length=200, editable=False)
    # Chain of custody (four eyes): every human answerable for this key's requests: its
    # owner, the human who created or last rotated it, and the custody of the key that
    # minted it. None of them may approve what the key asks.
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    minted_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    custody_user_ids = models.JSONField(default=list, blank=True, editable=False)
    # A key made for someone else (or rotated by someone else) waits for its owner to
    # claim the secret in their own session: the minter never sees it.
    secret_pending = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=80, editable=False)  # [p<pepper id>$]<hex>
    # Rotation: the previous secret keeps working until `previous_valid_until`.
    previous_digest = models.CharField(max_length=80, blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)

    scopes = models.JSONField(default=list)
    tool_allowlist = models.JSONField(default=list, help_text="Patterns like crm.* or email.send")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.CharField(max_length=200, blank=True, editable=False)
    # A revocable suspension (e.g. by anomaly detection), distinct from revocation.
    suspended_at = models.DateTimeField(null=True, blank=True, editable=False)
    unattended_mode = models.BooleanField(default=False)
    allowed_ips = models.JSONField(default=list, blank=True, help_text="CIDR list; empty: any")
    rate_limit_per_minute = models.PositiveIntegerField(
        default=settings.WARDEN_KEY_DEFAULT_RATE_PER_MINUTE
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    credential = models.CharField(
        max_length=10, choices=Credential.choices, default=Credential.SECRET, editable=False
    )
    # The OAuth client (django-oauth-toolkit application) whose tokens act as this key.
    oauth_application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    objects = GuardedQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "name"]
        indexes = [models.Index(fields=["workspace", "revoked_at"])]
        constraints = [
            # One live grant per client and human: their tokens name no workspace, so
            # this is how a token finds its key.
            models.UniqueConstraint(
                fields=["oauth_application", "owner"],
                condition=models.Q(revoked_at__isnull=True, oauth_application__isnull=False),
                name="one_live_oauth_grant_per_client_and_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} (wdn_{self.prefix}_…)"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.secret_pending and not self.digest:
            return "awaiting owner"
        if self.suspended_at:
            return "suspended"
        if self.is_expired():
            return "expired"
        return "active"

    def snapshot(self) -> dict:
        """Public, secret-free description for version logs and audit rows."""
        return {
            "name": self.name,
            "prefix": self.prefix,
            "owner": self.owner.email if self.owner_id else None,
            "scopes": sorted(self.scopes),
            "tool_allowlist": list(self.tool_allowlist),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "suspended_at": self.suspended_at.isoformat() if self.suspended_at else None,
            "unattended_mode": self.unattended_mode,
            "allowed_ips": list(self.allowed_ips),
            "rate_limit_per_minute": self.rate_limit_per_minute,
        }
