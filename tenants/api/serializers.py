from rest_framework import serializers

from tenants.models import Membership, Role, Workspace


class WorkspaceSerializer(serializers.ModelSerializer):
    dry_run = serializers.BooleanField(source="is_dry_run", read_only=True)

    class Meta:
        model = Workspace
        fields = [
            "id",
            "slug",
            "name",
            "mode",
            "dry_run",
            "live_after",
            "writes_enabled",
            "outbound_allowed",
            "policy_version",
        ]
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
