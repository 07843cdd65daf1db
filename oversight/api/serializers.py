"""Response shapes of GET /api/v1/posture (oversight.posture.posture_build)."""

from rest_framework import serializers

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
