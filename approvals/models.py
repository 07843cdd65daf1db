import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from approvals import personal_data
from approvals.validation import clean_tool_fields
from common.errors import WardenError
from common.guarded import GuardedQuerySet
from keys.models import MachineKey
from tenants.models import Workspace

# Tool names the platform reserves for its own gated operations (approvals.governance).
PLATFORM_TOOL_PREFIX = "warden."
# Keys of a governed proposal's `values` that hold ciphertext (approvals.door, e.g.
# gateway.governance): never shown to people.
SEALED_PREFIX = "sealed_"


class ToolBindingImmutable(WardenError):
    """Raised when a save would re-point an imported tool's binding."""


class ToolQuerySet(GuardedQuerySet):
    def update(self, **kwargs):
        if {"connector", "connector_id", "upstream_name"} & set(kwargs):
            raise ToolBindingImmutable(
                "conflict", "A tool's connector and upstream tool are fixed when it is imported."
            )
        return super().update(**kwargs)


class Tool(models.Model):
    """A catalog entry. Default-deny: a tool not here (or disabled) does not exist."""

    class Level(models.TextChoices):
        READ = "read"
        WRITE = "write"
        EXTERNAL = "external"

    class Confirmation(models.TextChoices):
        NEVER = "never"
        ALWAYS = "always"
        CONDITIONAL = "conditional"

    DATA_CLASSES = ("pii", "secrets", "financial", "regulated")
    # What an admin may set, through the admin, the API or the services alike.
    EDITABLE_FIELDS = (
        "name",
        "description",
        "level",
        "data_classes",
        "irreversible",
        "confirmation",
        "condition",
        "summary_template",
        "secret_params",
        "enabled",
        "input_schema",
        "deny_condition",
        "deny_reason",
        "dry_run",
        "shadow_confirmation",
        "shadow_condition",
        "shadow_deny_condition",
        "shadow_deny_reason",
        "subject_param",
        "output_projection",
    )
    # What the catalog services accept: the editable fields plus the connector link and
    # the upstream's definition, which only the gateway's catalog import sets.
    # The binding (connector, upstream_name) is set once: Tool.save refuses to change it.
    SERVICE_FIELDS = (
        *EDITABLE_FIELDS,
        "connector",
        "upstream_name",
        "upstream_digest",
        "output_schema",
        "upstream_annotations",
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.READ)
    data_classes = models.JSONField(default=list, blank=True)
    irreversible = models.BooleanField(default=False)
    confirmation = models.CharField(
        max_length=16, choices=Confirmation.choices, default=Confirmation.NEVER
    )
    condition = models.TextField(
        blank=True,
        help_text="CEL over params, key and workspace, e.g. params.amount > 1000. "
        "True means a human must confirm.",
    )
    summary_template = models.TextField(
        blank=True, help_text="Plain text with {params.field} placeholders (no template engine)."
    )
    secret_params = models.JSONField(
        default=list, blank=True, help_text="Parameter names stored only as HMAC digests."
    )
    enabled = models.BooleanField(default=True)
    # JSON Schema the params must match (approvals.arguments); empty: not checked.
    input_schema = models.JSONField(default=dict, blank=True)
    # Set when the tool was imported from a connector: Warden can execute it (gateway).
    connector = models.ForeignKey(
        "gateway.Connector",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="tools",
    )
    # The upstream tool Warden executes, verbatim as the connector named it, recorded
    # once at import and never changed (renaming the catalog entry changes only what its
    # name matches): identity is never a name (DESIGN principle 13).
    upstream_name = models.CharField(max_length=200, blank=True, editable=False)
    # SHA-256 of the upstream's definition (description, inputSchema, outputSchema,
    # annotations) as last imported: what a human reviewed. A call whose upstream
    # definition no longer matches is refused (gateway.services, rug pull).
    upstream_digest = models.CharField(max_length=64, blank=True, editable=False)
    # What the upstream declares about its result and its behaviour, kept as imported.
    output_schema = models.JSONField(default=dict, blank=True, editable=False)
    upstream_annotations = models.JSONField(default=dict, blank=True, editable=False)
    deny_condition = models.TextField(
        blank=True,
        help_text="CEL over params, key, workspace and tool; true refuses the call "
        "(denied_by_policy) with the reason below.",
    )
    deny_reason = models.CharField(
        max_length=300, blank=True, help_text="Told to the agent when the deny rule holds."
    )
    # Per-tool dry run (mirrors the workspace's): allowed calls answer dry_run: true and
    # must not be performed for real; gating is unchanged. Leaving it is governed.
    dry_run = models.BooleanField(
        default=False,
        help_text="Allowed calls answer dry_run: true (the agent must not act for real); "
        "what is gated does not change.",
    )
    # A rule in shadow: decided beside the live one and recorded on the request, never
    # enforced ("" = no shadow rule). Promoting it is a normal (governed) tool change.
    shadow_confirmation = models.CharField(
        max_length=16,
        choices=Confirmation.choices,
        blank=True,
        help_text="Shadow confirmation rule: recorded beside the live decision, not enforced.",
    )
    shadow_condition = models.TextField(
        blank=True,
        help_text="CEL condition of the shadow rule (with shadow confirmation conditional).",
    )
    # A deny rule in shadow: decided in place of the live deny rule beside the live
    # decision, recorded, never enforced ("" = none).
    shadow_deny_condition = models.TextField(
        blank=True,
        help_text="CEL deny rule in shadow: recorded beside the live decision (would it have "
        "refused?), not enforced.",
    )
    shadow_deny_reason = models.CharField(
        max_length=300, blank=True, help_text="The reason the shadow deny rule would state."
    )
    # The parameter naming the data subject of a call (e.g. "email"): its keyed digest is
    # kept on each request so a subject's values can be found and erased
    # (approvals.personal_data); never the value itself. Blank: erasable by request only.
    subject_param = models.CharField(
        max_length=200,
        blank=True,
        help_text="Parameter naming the data subject (erasure by subject); blank: none.",
    )
    # What of an executed call's result the agent may read (approvals.projection): null
    # returns it whole; a list of JSON paths returns only those, the rest is withheld
    # and recorded by digest. Removing or widening it is governed.
    output_projection = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text='JSON paths of the result the agent may read, e.g. ["$.items[*].id"]; '
        "empty (null): the whole result.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ToolQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="unique_tool_name")
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # A stored binding is immutable: a connector tool is never re-pointed at another
        # connector or another upstream tool, by any path that saves the model.
        was = getattr(self, "_binding", None)
        if was is not None and self.binding != was:
            raise ToolBindingImmutable(
                "conflict",
                "A tool's connector and upstream tool are fixed when it is imported.",
                {"connector": ["Not changeable."]},
            )
        super().save(*args, **kwargs)
        self._binding = self.binding

    @classmethod
    def from_db(cls, db, field_names, values):
        tool = super().from_db(db, field_names, values)
        tool._binding = tool.binding
        return tool

    @property
    def binding(self) -> tuple[Any, str]:
        """What runs upstream: the connector and the upstream tool, by id and verbatim."""
        return self.__dict__.get("connector_id"), self.__dict__.get("upstream_name", "")

    @property
    def is_platform(self) -> bool:
        return self.name.startswith(PLATFORM_TOOL_PREFIX)

    def clean(self):
        clean_tool_fields(self)

    def snapshot(self) -> dict:
        """Everything decide() needs, so a past policy can be rebuilt (audit_replay):
        `Tool(**snapshot)` is a valid input to approvals.gate.decide."""
        return {
            "name": self.name,
            "description": self.description,
            "level": self.level,
            "data_classes": list(self.data_classes),
            "irreversible": self.irreversible,
            "confirmation": self.confirmation,
            "condition": self.condition,
            "summary_template": self.summary_template,
            "secret_params": list(self.secret_params),
            "enabled": self.enabled,
            "input_schema": self.input_schema or {},
            "deny_condition": self.deny_condition,
            "deny_reason": self.deny_reason,
            "dry_run": self.dry_run,
            "shadow_confirmation": self.shadow_confirmation,
            "shadow_condition": self.shadow_condition,
            "shadow_deny_condition": self.shadow_deny_condition,
            "shadow_deny_reason": self.shadow_deny_reason,
            "subject_param": self.subject_param,
            "output_projection": (
                None if self.output_projection is None else list(self.output_projection)
            ),
        }

    @property
    def has_shadow(self) -> bool:
        return bool(self.shadow_confirmation) or bool((self.shadow_deny_condition or "").strip())

    @property
    def shadow_rule(self) -> str:
        """The shadow rules in words (the shadow report's `shadow_rule`)."""
        parts = []
        if self.shadow_confirmation == self.Confirmation.CONDITIONAL:
            parts.append(f"{self.shadow_confirmation}: {self.shadow_condition}")
        elif self.shadow_confirmation:
            parts.append(self.shadow_confirmation)
        if (self.shadow_deny_condition or "").strip():
            parts.append(f"deny: {self.shadow_deny_condition.strip()}")
        return "; ".join(parts)

    def shadow_copy(self) -> "Tool":
        """An unsaved copy deciding with the shadow rules in place of the live ones (a
        shadow confirmation rule replaces the confirmation rule, a shadow deny rule the
        deny rule; a rule with no shadow stays as it is live)."""
        copy = Tool(**{f.attname: getattr(self, f.attname) for f in Tool._meta.concrete_fields})
        if self.shadow_confirmation:
            copy.confirmation = self.shadow_confirmation
            copy.condition = self.shadow_condition
        if (self.shadow_deny_condition or "").strip():
            copy.deny_condition = self.shadow_deny_condition
            copy.deny_reason = self.shadow_deny_reason
        return copy


class ActionRequest(models.Model):
    """One ask: by an agent's key, or by a human session for a platform operation."""

    class Decision(models.TextChoices):
        ALLOWED = "allowed"
        DENIED = "denied"
        REQUIRES_CONFIRMATION = "requires_confirmation"

    class Status(models.TextChoices):
        ALLOWED = "allowed"
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        EXPIRED = "expired"
        EXECUTED = "executed"
        # Reported as succeeded while in dry-run: nothing ran for real.
        SIMULATED = "simulated"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: (workspace, key, tool_name, created_at) leads with it.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # Null when a human session asked (platform operations only).
    key = models.ForeignKey(
        MachineKey,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="action_requests",
    )
    requested_by = models.CharField(max_length=254)  # actor label: "key:<id>" / "user:<email>"
    # The human answerable for the request (the key's owner, or the requesting human):
    # never allowed to approve it (four eyes).
    accountable_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Everyone answerable for the request when it was made (the key's chain of custody,
    # or the proposing human): none of them may approve it.
    custody_user_ids = models.JSONField(default=list, blank=True)
    tool_name = models.CharField(max_length=200)
    tool = models.ForeignKey(Tool, null=True, blank=True, on_delete=models.SET_NULL)
    # Platform requests' params (a governed configuration change, kept plain like version
    # logs). An agent request's params are personal data: sealed under its data key
    # (`sealed_params`, read through the `params` property); this column stays {}.
    plain_params = models.JSONField(default=dict)  # secret params already digested
    params_digest = models.CharField(max_length=64)
    reason = models.TextField(blank=True)
    decision = models.CharField(max_length=32, choices=Decision.choices)
    denial_code = models.CharField(max_length=32, blank=True)
    rationale = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    policy_version = models.PositiveIntegerField()
    dry_run = models.BooleanField(default=False)
    # What the tool's shadow rule would have decided ({"outcome", "code", "rule",
    # "agrees"}); null when the tool had no shadow rule. Never enforced.
    shadow = models.JSONField(null=True, blank=True, editable=False)
    idempotency_key = models.CharField(max_length=200, blank=True)
    # The gate's outcome (approvals.outcome.Outcome.stored(): allowed / denied with its
    # code / pending with its confirmation), replayed through the one presenter for an
    # idempotent retry. Never an HTTP body, never a token.
    outcome = models.JSONField(default=dict)
    result_status = models.CharField(max_length=16, blank=True)
    result_output = models.JSONField(null=True, blank=True)
    result_reported_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Data minimisation (approvals.minimisation): once the workspace's plain-copy period
    # is over, `params` and `result_output` are emptied and only their fingerprints
    # stay: `params_digest` (SHA-256 of the stored params), the sizes below and the
    # output's SHA-256.
    plain_pruned_at = models.DateTimeField(null=True, blank=True, editable=False)
    params_bytes = models.PositiveIntegerField(null=True, blank=True, editable=False)
    result_output_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    result_output_bytes = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # Erasable personal data (approvals.personal_data): the request's data key, wrapped
    # ('' once erased), the ciphertexts it opens, and the data subject's keyed digest.
    data_key = models.TextField(blank=True, editable=False)
    sealed_params = models.TextField(blank=True, editable=False)
    sealed_output = models.TextField(blank=True, editable=False)
    subject_digest = models.CharField(max_length=64, blank=True, editable=False)
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="unique_idempotency_per_key",
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "key", "tool_name", "created_at"]),
            models.Index(
                fields=["workspace", "created_at"],
                condition=models.Q(plain_pruned_at__isnull=True),
                name="action_plain_copy_kept",
            ),
            models.Index(
                fields=["workspace", "subject_digest"],
                condition=~models.Q(subject_digest=""),
                name="action_data_subject",
            ),
            # Allowed and still without a result: the few rows the unreported-result
            # check (oversight.unreported) reads every few minutes.
            models.Index(
                fields=["workspace", "created_at"],
                condition=models.Q(status="allowed", result_reported_at__isnull=True),
                name="action_awaiting_result",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} by {self.requested_by}: {self.status}"

    @property
    def is_platform(self) -> bool:
        return self.tool_name.startswith(PLATFORM_TOOL_PREFIX)

    # --- erasable personal data (approvals.personal_data) ---------------------------------

    def _plain_data_key(self, create: bool = False) -> bytes:
        """The unwrapped data key (cached on the instance); raises Erased."""
        cached = self.__dict__.get("_data_key_plain")
        if cached is not None:
            return cached
        if not self.data_key and create and self.erased_at is None:
            plain, self.data_key = personal_data.new_data_key()
        else:
            plain = personal_data.unwrap(self.data_key)
        self.__dict__["_data_key_plain"] = plain
        return plain

    def seal_value(self, value: Any) -> str:
        """A value encrypted under this request's data key (created on first use)."""
        return personal_data.seal(self._plain_data_key(create=True), value)

    def open_value(self, token: str) -> Any:
        """A sealed value of this request; raises personal_data.Erased once erased."""
        return personal_data.open_sealed(self._plain_data_key(), token)

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None

    @property
    def params(self) -> dict:
        """The stored params (secret ones digested): plain for platform requests, opened
        from the sealed copy for agent requests; {} once erased (see `is_erased`)."""
        if not self.sealed_params:
            return self.plain_params
        cached = self.__dict__.get("_params_plain")
        if cached is None:
            try:
                cached = self.open_value(self.sealed_params)
            except personal_data.Erased:
                return {}
            self.__dict__["_params_plain"] = cached
        return cached

    @params.setter
    def params(self, value: dict) -> None:
        self.__dict__.pop("_params_plain", None)
        if self.tool_name.startswith(PLATFORM_TOOL_PREFIX) or not value:
            self.plain_params, self.sealed_params = value, ""
            return
        self.plain_params = {}
        self.sealed_params = self.seal_value(value)
        self.__dict__["_params_plain"] = value

    @property
    def reported_output(self) -> Any:
        """The output the agent reported (None when none, or erased, or pruned)."""
        if not self.sealed_output:
            return self.result_output if self.is_platform else None
        try:
            return self.open_value(self.sealed_output)
        except personal_data.Erased:
            return None

    @property
    def shown_params(self) -> Any:
        """Params as people see them: a governed proposal's sealed values (ciphertext
        only its applier opens, e.g. connector credentials) replaced by a marker; an
        erased request's params as the erased marker."""
        if self.is_erased:
            return personal_data.ERASED
        params = self.params
        values = params.get("values") if isinstance(params, dict) else None
        if not isinstance(values, dict) or not any(
            str(k).startswith(SEALED_PREFIX) for k in values
        ):
            return params
        shown = {
            k: ("(encrypted, write-only)" if v else "") if str(k).startswith(SEALED_PREFIX) else v
            for k, v in values.items()
        }
        return {**params, "values": shown}


class ConfirmationRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        EXPIRED = "expired"
        USED = "used"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    action_request = models.OneToOneField(
        ActionRequest, on_delete=models.CASCADE, related_name="confirmation"
    )
    token_digest = models.CharField(max_length=64, unique=True)
    params_digest = models.CharField(max_length=64)
    # What the approver reads, rendered from the params: plain for platform requests,
    # sealed under the request's data key for agent requests (`summary` reads either).
    plain_summary = models.TextField(blank=True)
    sealed_summary = models.TextField(blank=True, editable=False)
    irreversible = models.BooleanField(default=False)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    # The W3C traceparent of the decision that opened it (blank while telemetry is off):
    # the approval's span links back to it, so the wait joins the agent's trace.
    trace_parent = models.CharField(max_length=55, blank=True, default="", editable=False)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["workspace", "status", "created_at"])]

    def __str__(self) -> str:
        return f"confirmation {self.pk} ({self.status})"

    @property
    def summary(self) -> str:
        """The summary the approver reads; the erased marker once the request is erased."""
        if not self.sealed_summary:
            return self.plain_summary
        try:
            return str(self.action_request.open_value(self.sealed_summary))
        except personal_data.Erased:
            return personal_data.ERASED

    @summary.setter
    def summary(self, value: str) -> None:
        action = self.action_request
        if action.is_platform or not value:
            self.plain_summary, self.sealed_summary = value, ""
        else:
            self.plain_summary, self.sealed_summary = "", action.seal_value(value)

    def is_past_expiry(self, now=None) -> bool:
        return self.expires_at <= (now or timezone.now())


class ApprovalRecord(models.Model):
    """One human verdict on one confirmation (who, when, why, threshold)."""

    class Verdict(models.TextChoices):
        APPROVE = "approve"
        DENY = "deny"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    confirmation = models.ForeignKey(
        ConfirmationRequest, on_delete=models.PROTECT, related_name="approval_records"
    )
    approver = models.CharField(max_length=254)  # "user:<email>", kept if the user goes
    approver_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    reason = models.TextField()
    threshold = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["confirmation", "approver_user"], name="one_verdict_per_approver"
            )
        ]

    def __str__(self) -> str:
        return f"{self.verdict} by {self.approver}"


class PolicyVersion(models.Model):
    """One applied policy change (approvals.policy): what changed, who proposed it and
    who approved it, and the whole document as it stood afterwards, so any version can
    be viewed, diffed and proposed again (rollback is a change like any other)."""

    class Source(models.TextChoices):
        APPLIED = "applied", "Applied at once (narrows)"
        APPROVED = "approved", "Applied on approval"
        BREAK_GLASS = "break_glass", "Applied by an operator (break-glass)"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="policy_versions"
    )
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    source = models.CharField(max_length=16, choices=Source.choices)
    author = models.CharField(max_length=254, help_text="Who proposed the change (actor label).")
    approvers = models.JSONField(default=list, blank=True)
    reason = models.TextField(blank=True)
    diff = models.JSONField(default=dict, blank=True)
    operations = models.JSONField(default=list, blank=True)
    document = models.JSONField(default=dict)
    # The workspace's catalog counter once applied: audit entries decided under it (or
    # until the next version) were decided under this policy.
    policy_version = models.PositiveIntegerField()
    request = models.ForeignKey(
        ActionRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = GuardedQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "number"], name="unique_policy_version_number"
            )
        ]

    def __str__(self) -> str:
        return f"policy version {self.number}"
