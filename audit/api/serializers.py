"""Stable JSON schemas of the evidence objects (docs "Evidence" documents them).

Fields are only ever added, never renamed or removed. Timestamps of audit entries are
rendered exactly as they are hashed (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), so an entry
fetched from the API verifies with the same recipe as an exported line.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.chain import fast_timestamp
from audit.models import AuditAction, AuditEntry, EvidenceAttachment, ExceptionRecord, VersionLog
from common.api.schema import results_of
from common.api.serializers import StrictSerializer


@extend_schema_field(OpenApiTypes.DATETIME)
class EvidenceTimestampField(serializers.Field):
    def to_representation(self, value):
        return fast_timestamp(value) if value is not None else None


class AuditEntrySerializer(serializers.ModelSerializer):
    workspace = serializers.CharField(source="workspace_id")
    created_at = EvidenceTimestampField()
    # An open set: new actions come with new features, and old clients must not break.
    action = serializers.CharField(
        help_text=f"What happened. An open set; known values: {', '.join(AuditAction.values)}."
    )

    class Meta:
        model = AuditEntry
        fields = [
            "workspace",
            "seq",
            "created_at",
            "actor",
            "actor_type",
            "action",
            "target_type",
            "target_id",
            "tool",
            "input",
            "decision",
            "rationale",
            "policy_version",
            "request_id",
            "client_ip",
            "outcome",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class ExceptionRecordSerializer(serializers.ModelSerializer):
    created_at = EvidenceTimestampField()
    resolved_at = EvidenceTimestampField(allow_null=True)
    kind = serializers.CharField(
        help_text="An open set; known values: " + ", ".join(ExceptionRecord.Kind.values) + "."
    )
    audit_seq = serializers.IntegerField(source="audit_entry.seq")
    resolved = serializers.SerializerMethodField()

    class Meta:
        model = ExceptionRecord
        fields = [
            "id",
            "created_at",
            "kind",
            "severity",
            "what",
            "why",
            "evidence",
            "mitigation",
            "subject",
            "resolved",
            "resolved_by",
            "resolved_at",
            "audit_seq",
        ]
        read_only_fields = fields

    def get_resolved(self, obj) -> bool:
        return obj.resolved_at is not None


def json_diff(before, after) -> dict:
    """{field: [before, after]} for each top-level field that differs."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


class VersionLogSerializer(serializers.ModelSerializer):
    created_at = EvidenceTimestampField()
    audit_seq = serializers.IntegerField(source="audit_entry.seq")
    change = serializers.SerializerMethodField()
    diff = serializers.SerializerMethodField()

    class Meta:
        model = VersionLog
        fields = [
            "id",
            "created_at",
            "actor",
            "target_type",
            "target_id",
            "change",
            "before",
            "after",
            "diff",
            "reason",
            "policy_version",
            "audit_seq",
        ]
        read_only_fields = fields

    def get_change(self, obj) -> str:
        if obj.before is None:
            return "created"
        if obj.after is None:
            return "deleted"
        return "updated"

    def get_diff(self, obj) -> dict:
        return json_diff(obj.before, obj.after)


# --- privacy summary (oversight.privacy.privacy_summary_build) ------------------------


class PrivacyWorkspaceRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()


class PrivacyChainHeadSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    hash = serializers.CharField()


class PrivacyDataClassFiguresSerializer(serializers.Serializer):
    tools = serializers.IntegerField()
    action_requests = serializers.IntegerField()


class PrivacyRetentionSerializer(serializers.Serializer):
    audit_retention_days = serializers.IntegerField(allow_null=True)
    confirmation_ttl_seconds = serializers.IntegerField()
    plain_copy_retention_days = serializers.IntegerField(
        allow_null=True,
        help_text="Days plain copies of params and outputs are kept (null: forever); "
        "their SHA-256 digest and size are kept for good.",
    )
    max_output_copy_bytes = serializers.IntegerField(
        help_text="Larger outputs are kept as digest and size only."
    )


class PrivacyPlainCopiesSerializer(serializers.Serializer):
    action_requests_with_plain_copy = serializers.IntegerField()
    action_requests_digests_only = serializers.IntegerField()


class PrivacyUnreportedResultsSerializer(serializers.Serializer):
    window_minutes = serializers.IntegerField(
        allow_null=True, help_text="The workspace's window; null: the check is off."
    )
    flagged = serializers.IntegerField(help_text="Allowed actions with no reported result.")
    open = serializers.IntegerField(help_text="Of those, exception records still open.")


class PrivacySecretParamsSerializer(serializers.Serializer):
    tool = serializers.CharField()
    params = serializers.ListField(child=serializers.CharField())


class PrivacyStoredSerializer(serializers.Serializer):
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows per kind of record."
    )
    by_data_class = serializers.DictField(child=PrivacyDataClassFiguresSerializer())
    retention = PrivacyRetentionSerializer()
    plain_copies = PrivacyPlainCopiesSerializer(
        help_text="Agent requests holding a plain copy of their params, and pruned ones."
    )
    unreported_results = PrivacyUnreportedResultsSerializer()
    key_secrets = serializers.CharField()
    secret_params = PrivacySecretParamsSerializer(many=True)


class PrivacySharingSerializer(serializers.Serializer):
    opted_in = serializers.BooleanField()
    shared = serializers.ListField(child=serializers.CharField())
    text = serializers.CharField()


class PrivacyPermissionSerializer(serializers.Serializer):
    codename = serializers.CharField()
    description = serializers.CharField()


class PrivacyRoleAccessSerializer(serializers.Serializer):
    role = serializers.CharField()
    label = serializers.CharField()
    members = serializers.IntegerField()
    permissions = PrivacyPermissionSerializer(many=True)


class PrivacyAccessSerializer(serializers.Serializer):
    roles = PrivacyRoleAccessSerializer(many=True)
    keys_with_audit_read = serializers.IntegerField()


class PrivacySectionSerializer(serializers.Serializer):
    title = serializers.CharField()
    paragraphs = serializers.ListField(child=serializers.CharField())


class PrivacyConnectorSerializer(serializers.Serializer):
    name = serializers.CharField()
    host = serializers.CharField()
    enabled = serializers.BooleanField()
    tools = serializers.IntegerField()
    sends = serializers.CharField()


class PrivacyWebhookSerializer(serializers.Serializer):
    name = serializers.CharField()
    host = serializers.CharField()
    active = serializers.BooleanField()
    events = serializers.ListField(child=serializers.CharField())
    sends = serializers.CharField()


class PrivacyExportSerializer(serializers.Serializer):
    kind = serializers.CharField()
    host = serializers.CharField()
    active = serializers.BooleanField()
    sends = serializers.CharField()


class PrivacyDestinationsSerializer(serializers.Serializer):
    """Every place outside Warden this workspace's data can go, and what goes there."""

    connectors = PrivacyConnectorSerializer(many=True)
    webhooks = PrivacyWebhookSerializer(many=True)
    exports = PrivacyExportSerializer(many=True)
    outbound_hosts = serializers.ListField(child=serializers.CharField())


class PrivacySummarySerializer(serializers.Serializer):
    """The privacy summary as data; `sections` is the same text as the HTML and PDF."""

    version = serializers.IntegerField()
    workspace = PrivacyWorkspaceRefSerializer()
    generated_at = serializers.DateTimeField()
    audit_chain_head = PrivacyChainHeadSerializer()
    stored = PrivacyStoredSerializer()
    anonymized_sharing = PrivacySharingSerializer()
    never_leaves = serializers.ListField(child=serializers.CharField())
    access = PrivacyAccessSerializer()
    destinations = PrivacyDestinationsSerializer()
    sections = PrivacySectionSerializer(many=True)


class ExceptionResolveSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000)
    mitigation = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )


class AttachmentSerializer(serializers.ModelSerializer):
    created_at = EvidenceTimestampField()

    class Meta:
        model = EvidenceAttachment
        fields = [
            "id",
            "created_at",
            "target_type",
            "target_id",
            "url",
            "sha256",
            "title",
            "added_by",
        ]
        read_only_fields = fields


class AttachmentCreateSerializer(StrictSerializer):
    """Checked again by the service (audit.attachments): https only, no credentials."""

    url = serializers.CharField(
        max_length=2000, help_text="An https URL without user name, password or credential."
    )
    sha256 = serializers.CharField(
        max_length=71, help_text="SHA-256 of the linked document: 64 hex digits (`sha256:` ok)."
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


AttachmentListSerializer = results_of(AttachmentSerializer, name="AttachmentList")
