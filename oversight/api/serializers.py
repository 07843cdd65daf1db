"""Shapes of GET /api/v1/posture (oversight.posture.posture_build), POST
/api/v1/policy/simulate and GET /api/v1/policy/shadow-report."""

from rest_framework import serializers

from common.api.serializers import StrictSerializer
from oversight.posture import LEVELS


class PostureWorkspaceSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()


class PostureDecisionSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["allow", "allow_with_approvals", "deny"])
    label = serializers.CharField()
    meaning = serializers.CharField()
    sensitivity = serializers.ChoiceField(choices=LEVELS)
    autonomy = serializers.ChoiceField(choices=LEVELS)


class PostureDataClassSerializer(serializers.Serializer):
    data_class = serializers.CharField(help_text="pii, secrets, financial, regulated or none")
    tools = serializers.ListField(child=serializers.CharField())


class PostureSensitivitySerializer(serializers.Serializer):
    points = serializers.FloatField()
    tools_by_data_class = PostureDataClassSerializer(many=True)
    enabled_tools = serializers.IntegerField()
    sensitive_tools = serializers.IntegerField()
    decisions = serializers.IntegerField(help_text="Decisions in the window.")
    sensitive_decisions = serializers.IntegerField()
    sensitive_traffic_share = serializers.FloatField()


class PostureKeyRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class PostureAutonomySerializer(serializers.Serializer):
    points = serializers.FloatField()
    writes_enabled = serializers.BooleanField()
    outbound_allowed = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    sensitivity_floor = serializers.BooleanField()
    active_keys = serializers.IntegerField()
    unattended_keys = PostureKeyRefSerializer(many=True)
    acting_tools = serializers.IntegerField(help_text="Enabled write and external tools.")
    tools_confirmation_never = serializers.ListField(
        child=serializers.CharField(),
        help_text="Enabled write and external tools whose confirmation rule is never.",
    )


class PostureScorePartSerializer(serializers.Serializer):
    factor = serializers.CharField()
    weight = serializers.IntegerField()
    points = serializers.FloatField()


class PostureApiHintSerializer(serializers.Serializer):
    method = serializers.CharField()
    path = serializers.CharField()
    body = serializers.CharField()


class PostureTargetSerializer(serializers.Serializer):
    name = serializers.CharField()
    admin_url = serializers.CharField()


class PostureMitigationSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    points = serializers.IntegerField(help_text="How much applying it lowers the score.")
    score_after = serializers.IntegerField()
    admin_url = serializers.CharField()
    api = PostureApiHintSerializer()
    targets = PostureTargetSerializer(many=True)


class UnreportedResultsSerializer(serializers.Serializer):
    window_minutes = serializers.IntegerField(
        allow_null=True, help_text="The workspace's window; null: the check is off."
    )
    flagged = serializers.IntegerField(
        help_text="Allowed actions flagged for a result never reported (exception records)."
    )
    open = serializers.IntegerField(help_text="Of those, exception records still open.")


class PostureSerializer(serializers.Serializer):
    workspace = PostureWorkspaceSerializer()
    computed_at = serializers.DateTimeField()
    window_days = serializers.IntegerField()
    score = serializers.IntegerField(min_value=0, max_value=100)
    decision = PostureDecisionSerializer()
    sensitivity = PostureSensitivitySerializer()
    autonomy = PostureAutonomySerializer()
    score_parts = PostureScorePartSerializer(many=True)
    mitigations = PostureMitigationSerializer(many=True)
    unreported_results = UnreportedResultsSerializer(
        help_text="Evidence gaps beside the score (they do not change it)."
    )


# --- POST /api/v1/policy/simulate (approvals.policy_impact) ------------------------------


class SimulateRequestSerializer(StrictSerializer):
    """A proposed policy, replayed on the workspace's recorded requests."""

    tools = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        allow_null=True,
        help_text="The whole proposed catalog as Tool.snapshot() objects (name, level, "
        "confirmation, condition, ...). Omitted or null: today's catalog.",
    )
    settings = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="Proposed workspace settings (Workspace.settings_snapshot() keys; those "
        "the gate reads apply). Omitted: today's.",
    )
    days = serializers.IntegerField(required=False, default=30, min_value=1, max_value=365)


class ImpactTransitionSerializer(serializers.Serializer):
    from_ = serializers.CharField(help_text="The recorded decision, e.g. 'needs a human'.")
    to = serializers.CharField(help_text="The decision under the proposed policy.")
    count = serializers.IntegerField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class ImpactExampleSerializer(serializers.Serializer):
    action_id = serializers.UUIDField()
    tool = serializers.CharField()
    key = serializers.CharField(help_text="The key's name.")
    created_at = serializers.DateTimeField()
    recorded = serializers.CharField()
    proposed = serializers.CharField()
    why = serializers.CharField(help_text="The rule that decides under the proposed policy.")


class ImpactToolSerializer(serializers.Serializer):
    tool = serializers.CharField()
    changed = serializers.IntegerField()
    requests = serializers.IntegerField(help_text="Its requests in the window.")


class ImpactKeySerializer(serializers.Serializer):
    key_id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    changed = serializers.IntegerField()


class ImpactSummarySerializer(serializers.Serializer):
    now_allowed_without_human = serializers.IntegerField()
    now_needs_human = serializers.IntegerField()
    now_denied = serializers.IntegerField()
    no_longer_denied = serializers.IntegerField()
    more_approvals = serializers.IntegerField()
    fewer_approvals = serializers.IntegerField()
    other_denial = serializers.IntegerField()


class ImpactReportSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    scanned = serializers.IntegerField(help_text="Recorded agent requests replayed.")
    capped = serializers.BooleanField(help_text="Only the newest requests were replayed.")
    changed = serializers.IntegerField(help_text="Decisions that differ from the recorded.")
    headline = serializers.CharField()
    summary = ImpactSummarySerializer()
    transitions = ImpactTransitionSerializer(many=True)
    examples = ImpactExampleSerializer(many=True)
    tools = ImpactToolSerializer(many=True, help_text="Most affected tools.")
    keys = ImpactKeySerializer(many=True, help_text="Most affected keys.")
    drift = serializers.IntegerField(
        help_text="Requests today's policy already decides differently from the record."
    )
    notes = serializers.ListField(child=serializers.CharField())


# --- GET /api/v1/policy/shadow-report (approvals.shadow) ---------------------------------


class ShadowReportQuerySerializer(StrictSerializer):
    days = serializers.IntegerField(required=False, default=30, min_value=1, max_value=365)


class ShadowTransitionSerializer(serializers.Serializer):
    live = serializers.CharField()
    shadow = serializers.CharField()
    count = serializers.IntegerField()


class ShadowExampleSerializer(serializers.Serializer):
    action_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    live = serializers.CharField()
    shadow = serializers.CharField()


class ShadowToolSerializer(serializers.Serializer):
    tool = serializers.CharField()
    shadow_rule = serializers.CharField()
    shadowed = serializers.IntegerField()
    disagreements = serializers.IntegerField()
    transitions = ShadowTransitionSerializer(many=True)
    examples = ShadowExampleSerializer(many=True)


class ShadowReportSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    shadowed = serializers.IntegerField()
    disagreements = serializers.IntegerField()
    tools = ShadowToolSerializer(many=True)
