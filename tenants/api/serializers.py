from rest_framework import serializers

from common.api.schema import results_of
from common.api.serializers import SharedFieldsMixin, StrictSerializer
from gateway.outbound import outbound_hosts
from tenants.models import Invitation, Membership, Role, Workspace


class WorkspaceSerializer(SharedFieldsMixin, serializers.ModelSerializer):
    """Read-only, on every whoami: its fields are derived from the model and bound once
    per class (DRF rebuilds them from model metadata for each instance)."""

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
            "sensitivity_floor",
            "plain_copy_retention_days",
            "policy_version",
        ]
        read_only_fields = fields


class WorkspaceDetailSerializer(WorkspaceSerializer):
    """GET/PATCH /workspace: the settings plus the outbound host allowlist (kept out of
    whoami, which answers from the key lookup alone)."""

    outbound_hosts = serializers.SerializerMethodField(
        help_text="Hosts webhooks, audit exports and connectors may reach: exact host, "
        "*.suffix or IP/CIDR. Empty: none. Adding hosts is governed."
    )

    class Meta(WorkspaceSerializer.Meta):
        fields = [*WorkspaceSerializer.Meta.fields, "outbound_hosts"]
        read_only_fields = fields

    def get_outbound_hosts(self, workspace) -> list[str]:
        return outbound_hosts(workspace)


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why (required, not blank: 400 reason_required otherwise).",
    )


class ConfirmationFieldsSerializer(StrictSerializer):
    """The re-call of a gated platform operation (approvals.door) carries these."""

    confirmed = serializers.BooleanField(required=False, default=False)
    confirmation_token = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why (required, not blank: 400 reason_required otherwise); recorded in "
        "the change's version log. Not needed on the confirmed re-call.",
    )


class MembershipUpdateSerializer(ConfirmationFieldsSerializer):
    patch_is_partial = False  # the view validates the whole body: role is required
    role = serializers.ChoiceField(choices=Role.choices)


class WorkspaceUpdateSerializer(ConfirmationFieldsSerializer):
    # The allowlist is stored apart from the other settings (tenants.api.views).
    sent_alone = ("outbound_hosts", ("confirmed", "confirmation_token", "reason"))
    name = serializers.CharField(max_length=200, required=False)
    writes_enabled = serializers.BooleanField(required=False)
    mode = serializers.ChoiceField(choices=Workspace.Mode.choices, required=False)
    live_after = serializers.DateTimeField(required=False)
    outbound_allowed = serializers.BooleanField(required=False)
    confirmation_ttl_seconds = serializers.IntegerField(
        min_value=60, max_value=30 * 24 * 3600, required=False
    )
    require_two_approvals_for_irreversible = serializers.BooleanField(required=False)
    sensitivity_floor = serializers.BooleanField(required=False)
    plan_rank = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    audit_retention_days = serializers.IntegerField(
        min_value=1, max_value=36500, required=False, allow_null=True
    )
    plain_copy_retention_days = serializers.IntegerField(
        min_value=0,
        max_value=36500,
        required=False,
        allow_null=True,
        help_text="Days plain copies of action parameters and outputs are kept (digests: "
        "forever); null keeps them forever. Not governed: it never widens what agents may do.",
    )
    outbound_hosts = serializers.ListField(
        child=serializers.CharField(max_length=255),
        max_length=200,
        required=False,
        help_text="Replaces the allowlist; send it alone (it is stored apart from the other "
        "settings). Removing hosts applies at once; adding one is governed (202).",
    )
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class WorkspaceDeleteSerializer(ConfirmationFieldsSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


MembershipListSerializer = results_of(MembershipSerializer, name="MembershipList")


class WhoAmIKeySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    tool_allowlist = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField(allow_null=True)
    unattended_mode = serializers.BooleanField()


class WhoAmIUserSerializer(serializers.Serializer):
    email = serializers.EmailField()


class WhoAmISerializer(serializers.Serializer):
    """`key` and `scopes` come with a machine key, `user` with a human session."""

    workspace = WorkspaceSerializer()
    mode = serializers.ChoiceField(choices=Workspace.Mode.choices)
    dry_run = serializers.BooleanField()
    writes_enabled = serializers.BooleanField()
    principal = serializers.ChoiceField(choices=["key", "user"])
    key = WhoAmIKeySerializer(required=False)
    scopes = serializers.ListField(child=serializers.CharField(), required=False)
    user = WhoAmIUserSerializer(required=False)


class InvitationSerializer(serializers.ModelSerializer):
    workspace = serializers.CharField(source="workspace.slug", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "workspace", "email", "role", "invited_by", "created_at", "expires_at"]
        read_only_fields = fields


InvitationListSerializer = results_of(InvitationSerializer, name="InvitationList")


class MemberInvitedSerializer(serializers.Serializer):
    """202 of POST /members for a person who already belongs to another workspace:
    they are invited, and join when they accept."""

    status = serializers.ChoiceField(choices=["invited"])
    invitation = InvitationSerializer()
