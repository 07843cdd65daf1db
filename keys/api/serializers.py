from rest_framework import serializers

from common.api.schema import results_of
from common.api.serializers import StrictSerializer, declared
from common.scopes import ALL_SCOPES
from keys.models import MachineKey


class MachineKeySerializer(serializers.ModelSerializer):
    """Public view of a key: never the secret or its digest."""

    owner = serializers.EmailField(source="owner.email", read_only=True)
    status = serializers.CharField(read_only=True)
    oauth_client = serializers.SerializerMethodField(
        help_text="For an OAuth grant (credential oauth): the client's id and name."
    )

    def get_oauth_client(self, key) -> dict | None:
        application = key.oauth_application
        if application is None:
            return None
        return {"client_id": application.client_id, "name": application.name}

    class Meta:
        model = MachineKey
        fields = [
            "id",
            "name",
            "prefix",
            "credential",
            "oauth_client",
            "owner",
            "scopes",
            "tool_allowlist",
            "expires_at",
            "revoked_at",
            "status",
            "unattended_mode",
            "allowed_ips",
            "rate_limit_per_minute",
            "last_used_at",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields


class IssuedKeySerializer(MachineKeySerializer):
    key = serializers.CharField(
        required=False,
        help_text="The full key, shown only once, and only to whom it belongs (its owner, "
        "or the key itself on rotation); otherwise absent: the owner claims it with "
        "POST /keys/{id}/claim.",
    )

    class Meta(MachineKeySerializer.Meta):
        fields = [*MachineKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class MachineKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    owner = serializers.EmailField(required=False, help_text="Defaults to the caller's owner.")
    scopes = serializers.ListField(
        child=declared(serializers.CharField(max_length=64), enum=sorted(ALL_SCOPES)),
        max_length=20,
    )
    tool_allowlist = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=100, required=False, default=list
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=50, required=False, default=list
    )
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    unattended_mode = serializers.BooleanField(required=False, default=False)
    # Re-call of a gated creation (workspace:admin or unattended keys, approvals.door).
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why (required, not blank: 400 reason_required otherwise).",
    )
    confirmed = serializers.BooleanField(required=False, default=False)
    confirmation_token = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class KeyUpdateSerializer(StrictSerializer):
    unattended_mode = serializers.BooleanField()
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    # Re-call of a governed change (switching unattended mode on, approvals.door).
    confirmed = serializers.BooleanField(required=False, default=False)
    confirmation_token = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class KeyRotateSerializer(StrictSerializer):
    grace_seconds = serializers.IntegerField(min_value=0, max_value=7 * 24 * 3600, required=False)


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


MachineKeyListSerializer = results_of(MachineKeySerializer, name="MachineKeyList")
