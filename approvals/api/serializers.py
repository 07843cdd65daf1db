from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from approvals import gate
from approvals.models import ActionRequest, ConfirmationRequest, Tool
from approvals.validation import PARAM_NAME_RE, RESERVED_PREFIX, TOOL_NAME_RE
from common.api.schema import results_of
from common.api.serializers import SharedFieldsSerializer, StrictSerializer, declared
from gateway.api.serializers import ExecutionSerializer


def open_choice(known, what: str) -> serializers.CharField:
    """A value whose set grows over time: a plain string in the schema (old clients must
    not break on a new value), with today's values documented."""
    return serializers.CharField(
        read_only=True,
        help_text=f"{what} An open set; known values: {', '.join(known)}.",
    )


class ActionCreateSerializer(SharedFieldsSerializer):
    couples_confirmation = True  # the schema states: confirmed exactly with a token
    tool = serializers.CharField(max_length=200)
    params = serializers.DictField(required=False, default=dict)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    idempotency_key = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    workspace_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    confirmed = serializers.BooleanField(required=False, default=False)
    confirmation_token = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    execute = serializers.BooleanField(
        required=False, default=False, help_text="Connector-backed tools: Warden executes it."
    )


class ActionAllowedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    decision = serializers.ChoiceField(choices=["allowed"])
    dry_run = serializers.BooleanField(
        help_text="true: the workspace is in dry-run; do not perform the action for real."
    )


class ActionConfirmationSerializer(serializers.Serializer):
    """202: nothing happened yet. A human approves; then re-send the exact same call
    with `"confirmed": true` and this token."""

    id = serializers.UUIDField()
    decision = serializers.ChoiceField(choices=["requires_confirmation"])
    requires_confirmation = serializers.BooleanField()
    confirmation_token = serializers.CharField(
        help_text="ct_..., single use, bound to this exact call; only a digest is stored."
    )
    governed_operations = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="On a governed platform change: the operations that need the approval "
        "(an open set, see the documentation).",
    )
    summary = serializers.CharField()
    irreversible = serializers.BooleanField()
    expires_at = serializers.DateTimeField()


class ConfirmationSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConfirmationRequest
        fields = [
            "id",
            "status",
            "summary",
            "irreversible",
            "approvals_required",
            "created_at",
            "expires_at",
            "decided_at",
            "used_at",
        ]
        read_only_fields = fields


class ActionWaitSerializer(serializers.Serializer):
    wait = serializers.IntegerField(
        min_value=0,
        max_value=30,
        required=False,
        default=0,
        help_text="Long-poll: answer as soon as the action is no longer pending, "
        "or after this many seconds (0-30).",
    )


class ActionRequestSerializer(serializers.ModelSerializer):
    tool = serializers.CharField(source="tool_name", read_only=True)
    status = open_choice(ActionRequest.Status.values, "Where the request stands.")
    decision = open_choice(ActionRequest.Decision.values, "The gate's first answer.")
    denial_code = serializers.CharField(
        read_only=True,
        help_text="The error code of a denial (see the Error component), else empty.",
    )
    result_status = serializers.CharField(
        read_only=True,
        help_text="What the agent reported (succeeded, failed; an open set), else empty.",
    )
    confirmation = serializers.SerializerMethodField()
    denial_reason = serializers.SerializerMethodField(
        help_text="The approver's reason when a human denied the request."
    )
    decided_by = serializers.SerializerMethodField(
        help_text="Approvers who gave a verdict (`user:<email>`), in order."
    )
    execution = serializers.SerializerMethodField()
    personal_data = serializers.SerializerMethodField(
        help_text="The request's params, summary and outputs: kept (sealed, readable by "
        "reviewers), erased (data key destroyed), or pruned (data minimisation)."
    )

    class Meta:
        model = ActionRequest
        fields = [
            "id",
            "tool",
            "status",
            "decision",
            "denial_code",
            "dry_run",
            "policy_version",
            "reason",
            "created_at",
            "result_status",
            "result_reported_at",
            "confirmation",
            "denial_reason",
            "decided_by",
            "execution",
            "personal_data",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=["kept", "erased", "pruned"]))
    def get_personal_data(self, obj) -> str:
        if obj.is_erased:
            return "erased"
        return "pruned" if obj.plain_pruned_at is not None else "kept"

    @staticmethod
    def _verdicts(obj) -> list:
        try:
            return list(obj.confirmation.approval_records.all())
        except ConfirmationRequest.DoesNotExist:
            return []

    def get_denial_reason(self, obj) -> str | None:
        if obj.status != ActionRequest.Status.DENIED:
            return None
        denials = [r.reason for r in self._verdicts(obj) if r.verdict == "deny"]
        return denials[0] if denials else None

    def get_decided_by(self, obj) -> list[str]:
        return [r.approver for r in self._verdicts(obj)]

    @extend_schema_field(ExecutionSerializer(allow_null=True))
    def get_execution(self, obj) -> dict | None:
        execution = getattr(obj, "execution", None)  # reverse one-to-one: None when absent
        return ExecutionSerializer(execution).data if execution is not None else None

    @extend_schema_field(ConfirmationSerializer(allow_null=True))
    def get_confirmation(self, obj) -> dict | None:
        try:
            confirmation = obj.confirmation
        except ConfirmationRequest.DoesNotExist:
            return None
        return ConfirmationSerializer(confirmation).data


class ActionResultSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    output = serializers.JSONField(required=False, allow_null=True, default=None)


class EffectiveConfirmationSerializer(serializers.Serializer):
    rule = serializers.ChoiceField(choices=Tool.Confirmation.choices)
    reason = serializers.CharField()


class ToolSerializer(serializers.ModelSerializer):
    """The catalog entry as a human admin sees it. `confirmation` is the tool's own rule;
    `effective_confirmation` is what the gate does with it for an attended key, with the
    workspace's rules (floor, outbound) applied: the same answer as the admin and posture."""

    effective_confirmation = serializers.SerializerMethodField()
    shadow_confirmation = serializers.ChoiceField(
        choices=Tool.Confirmation.choices,
        allow_blank=True,
        read_only=True,
        help_text="Shadow confirmation rule, recorded beside the live decision and never "
        'enforced; "" when the tool has none.',
    )

    class Meta:
        model = Tool
        fields = [
            "id",
            *Tool.EDITABLE_FIELDS,
            "effective_confirmation",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(EffectiveConfirmationSerializer)
    def get_effective_confirmation(self, obj) -> dict:
        effective = gate.tool_confirmation(obj.workspace, obj)
        return {"rule": effective.rule, "reason": effective.reason}


class CallableToolSerializer(serializers.Serializer):
    """A tool as an agent sees it: what it may call, and whether a human confirms."""

    closed_schema = True  # tells it apart from the admin view (Tool) in GET /tools

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    level = serializers.CharField()
    data_classes = serializers.ListField(child=serializers.CharField())
    irreversible = serializers.BooleanField()
    confirmation = serializers.ChoiceField(
        choices=Tool.Confirmation.choices,
        help_text="Effective for this key: the floor, the outbound gate and unattended mode "
        "applied.",
    )
    confirmation_reason = serializers.CharField(
        help_text="Why: the rule that decides (the tool's own, the sensitivity floor, ...)."
    )


# approvals.validation's naming rules, as the schema states them.
TOOL_NAME_SCHEMA = {
    "pattern": f"^(?!warden$)(?!{RESERVED_PREFIX.replace('.', '[.]')})"
    + TOOL_NAME_RE.pattern.removeprefix("^")
}


class ToolWriteSerializer(StrictSerializer):
    name = declared(serializers.CharField(max_length=200), **TOOL_NAME_SCHEMA)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    level = serializers.ChoiceField(choices=Tool.Level.choices, required=False)
    data_classes = serializers.ListField(
        child=serializers.ChoiceField(choices=list(Tool.DATA_CLASSES)),
        required=False,
        max_length=4,
    )
    irreversible = serializers.BooleanField(required=False)
    confirmation = serializers.ChoiceField(choices=Tool.Confirmation.choices, required=False)
    condition = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    summary_template = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    secret_params = serializers.ListField(
        child=declared(serializers.CharField(max_length=100), pattern=PARAM_NAME_RE.pattern),
        required=False,
        max_length=50,
    )
    enabled = serializers.BooleanField(required=False)
    input_schema = declared(serializers.JSONField(required=False), type="object")
    deny_condition = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    deny_reason = serializers.CharField(max_length=300, required=False, allow_blank=True)
    dry_run = serializers.BooleanField(required=False)
    shadow_confirmation = serializers.ChoiceField(
        choices=[("", "none"), *Tool.Confirmation.choices], required=False, allow_blank=True
    )
    shadow_condition = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    shadow_deny_condition = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    shadow_deny_reason = serializers.CharField(max_length=300, required=False, allow_blank=True)
    output_projection = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='JSON paths of an executed result the agent may read ("$.items[*].id"); '
        "null: the whole result. Removing or widening it is filed for a second human.",
    )
    subject_param = serializers.CharField(max_length=200, required=False, allow_blank=True)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class VerdictSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ApprovalSerializer(serializers.ModelSerializer):
    """A pending confirmation as an approver sees it (agent text is data, escaped by
    every client that displays it)."""

    action_request = serializers.UUIDField(source="action_request_id", read_only=True)
    tool = serializers.CharField(source="action_request.tool_name", read_only=True)
    params = serializers.JSONField(source="action_request.shown_params", read_only=True)
    reason = serializers.CharField(source="action_request.reason", read_only=True)
    requested_by = serializers.CharField(source="action_request.requested_by", read_only=True)
    approvals = serializers.SerializerMethodField()

    class Meta:
        model = ConfirmationRequest
        fields = [
            "id",
            "action_request",
            "tool",
            "params",
            "reason",
            "requested_by",
            "summary",
            "irreversible",
            "status",
            "approvals_required",
            "approvals",
            "created_at",
            "expires_at",
            "decided_at",
        ]
        read_only_fields = fields

    def get_approvals(self, obj) -> int:
        return sum(1 for r in obj.approval_records.all() if r.verdict == "approve")


ToolListSerializer = results_of(
    PolymorphicProxySerializer(
        component_name="AnyTool",
        serializers=[ToolSerializer, CallableToolSerializer],
        resource_type_field_name=None,
        many=True,
    ),
    name="ToolList",
)
ApprovalListSerializer = results_of(ApprovalSerializer, name="ApprovalList")
