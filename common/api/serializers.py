from collections.abc import Mapping

from rest_framework import serializers

# Fields a client may add to any body to name its workspace (tenants.scoping checks
# them against the credential's workspace before any serializer runs).
CLIENT_WORKSPACE_FIELDS = ("workspace_id", "workspace")


class StrictSerializer(serializers.Serializer):
    """Fields not declared here are refused with 400 validation_error naming them."""

    # The base of every request body (its docstring is the schema's description). A
    # dropped field is a silent lie: a key created with "tools" instead of
    # "tool_allowlist" would do nothing, with 201.

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields) - set(CLIENT_WORKSPACE_FIELDS))
            if unknown:
                raise serializers.ValidationError(
                    {str(name)[:100]: ["Unknown field."] for name in unknown[:20]}
                )
        return super().to_internal_value(data)
