"""Stable JSON schemas of the evidence objects (README "Evidence" documents them).

Fields are only ever added, never renamed or removed. Timestamps of audit entries are
rendered exactly as they are hashed (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), so an entry
fetched from the API verifies with the same recipe as an exported line.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.chain import fast_timestamp
from audit.models import AuditEntry, ExceptionRecord, VersionLog


@extend_schema_field(OpenApiTypes.DATETIME)
class EvidenceTimestampField(serializers.Field):
    def to_representation(self, value):
        return fast_timestamp(value) if value is not None else None


class AuditEntrySerializer(serializers.ModelSerializer):
    workspace = serializers.CharField(source="workspace_id")
    created_at = EvidenceTimestampField()

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
    resolved_at = EvidenceTimestampField()
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


def page_of(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The cursor-paginated envelope of a list, for the OpenAPI schema."""
    name = serializer_class.__name__.removesuffix("Serializer") + "PageSerializer"
    return type(
        name,
        (serializers.Serializer,),
        {
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


class ExceptionResolveSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    mitigation = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )
