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
