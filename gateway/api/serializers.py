from rest_framework import serializers

from common.api.schema import results_of
from common.api.serializers import StrictSerializer, declared
from gateway.models import CONNECTOR_NAME, Connector, Execution
from gateway.services import MAX_HEADER_VALUE, MAX_HEADERS


class ConnectorSerializer(serializers.ModelSerializer):
    """Reads: header names only, never values."""

    headers = serializers.ListField(source="header_names", read_only=True)
    tools = serializers.SerializerMethodField()

    class Meta:
        model = Connector
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "headers",
            "declared_tools",
            "enabled",
            "tools",
            "created_at",
            "updated_at",
            "last_synced_at",
        ]
        read_only_fields = fields

    def get_tools(self, connector) -> list[str]:
        return sorted(t.name for t in connector.tools.all())


# gateway.services._clean_headers' rules: one line of text, at most MAX_HEADERS of them.
def header_value() -> serializers.CharField:
    return declared(
        serializers.CharField(max_length=MAX_HEADER_VALUE, trim_whitespace=False),
        pattern="^[^\\r\\n\\u0000\\ud800-\\udfff]*$",
    )


class ConnectorWriteSerializer(StrictSerializer):
    name = declared(serializers.CharField(max_length=63), pattern=f"^{CONNECTOR_NAME.pattern}$")
    kind = serializers.ChoiceField(choices=Connector.Kind.choices, default=Connector.Kind.MCP)
    url = serializers.CharField(max_length=2000)
    headers = declared(
        serializers.DictField(
            child=header_value(),
            required=False,
            help_text="Write-only: {name: value or env:NAME}. Replaces all headers when sent.",
        ),
        maxProperties=MAX_HEADERS,
    )
    declared_tools = serializers.ListField(
        child=serializers.DictField(), required=False, max_length=500
    )
    enabled = serializers.BooleanField(required=False, default=True)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    # The proposer's re-call of a governed change, once a human approved it.
    confirmed = serializers.BooleanField(required=False, default=False)
    confirmation_token = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class ConnectorUpdateSerializer(StrictSerializer):
    url = serializers.CharField(max_length=2000, required=False)
    headers = declared(
        serializers.DictField(child=header_value(), required=False), maxProperties=MAX_HEADERS
    )
    declared_tools = serializers.ListField(
        child=serializers.DictField(), required=False, max_length=500
    )
    enabled = serializers.BooleanField(required=False)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    # The proposer's re-call of a governed change, once a human approved it.
    confirmed = serializers.BooleanField(required=False, default=False)
    confirmation_token = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class SyncReportSerializer(serializers.Serializer):
    created = serializers.ListField(child=serializers.CharField())
    changed = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    skipped = serializers.ListField(child=serializers.CharField())


class ExecutionSerializer(serializers.ModelSerializer):
    connector = serializers.CharField(source="connector.name", default=None, read_only=True)
    withheld = serializers.JSONField(
        read_only=True,
        allow_null=True,
        help_text="What the tool's output projection withheld from this result: "
        '{"count", "entries": [{"path", "digest", "bytes"}]} (keyed digests, never '
        "values); null when the tool has no projection.",
    )

    class Meta:
        model = Execution
        fields = [
            "id",
            "connector",
            "upstream_tool",
            "status",
            "error",
            "output_sha256",
            "output_bytes",
            "withheld",
            "latency_ms",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


ConnectorListSerializer = results_of(ConnectorSerializer, name="ConnectorList")
