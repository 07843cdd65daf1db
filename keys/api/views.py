from datetime import timedelta

from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from approvals import door, proposals
from approvals.api.door_responses import door_response
from approvals.api.serializers import ActionConfirmationSerializer
from common.api.views import USER, WorkspaceAPIView
from common.errors import WardenError
from common.scopes import KEYS_READ, KEYS_WRITE
from keys import services
from keys.api.serializers import (
    IssuedKeySerializer,
    KeyRotateSerializer,
    KeyUpdateSerializer,
    MachineKeyCreateSerializer,
    MachineKeyListSerializer,
    MachineKeySerializer,
    ReasonSerializer,
)
from keys.models import MachineKey
from keys.selectors import key_get, key_list
from tenants.selectors import membership_list


def _key_or_404(request, pk) -> MachineKey:
    key = key_get(workspace=request.workspace, pk=pk)
    if key is None:
        raise WardenError("not_found", "Not found.")
    return key


@sensitive_variables("data")
def _issued(issued) -> dict:
    """The key, with its secret only when this caller is the one to receive it (the
    owner, or the key itself); otherwise the owner claims it in their session."""
    if not hasattr(issued, "plaintext"):  # a key applied through the door
        return dict(MachineKeySerializer(issued).data)
    data = dict(MachineKeySerializer(issued.key).data)
    if issued.plaintext is not None:
        data["key"] = issued.plaintext
    return data


def resolve_owner(request, email: str | None):
    """The key's owner: a member named by email, else the caller (or the caller's owner)."""
    if not email:
        return request.principal.user
    membership = (
        membership_list(workspace=request.workspace).filter(user__email__iexact=email).first()
    )
    if membership is None:
        raise WardenError(
            "validation_error",
            "The key's owner must be a workspace member.",
            {"owner": ["Not a member of this workspace."]},
        )
    return membership.user


class KeyListView(WorkspaceAPIView):
    scope_map = {"GET": KEYS_READ, "POST": KEYS_WRITE}

    @extend_schema(operation_id="keys_list", responses=MachineKeyListSerializer)
    def get(self, request):
        keys = key_list(workspace=request.workspace)
        return Response({"results": MachineKeySerializer(keys, many=True).data})

    @extend_schema(
        operation_id="keys_create",
        description="A key holding workspace:admin, or in unattended mode, is a governed "
        "operation: 202 with a confirmation token first, created on the confirmed re-call.",
        request=MachineKeyCreateSerializer,
        responses={201: IssuedKeySerializer, 202: ActionConfirmationSerializer},
    )
    def post(self, request):
        data = MachineKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        confirmed = fields.pop("confirmed", False)
        token = fields.pop("confirmation_token", "")
        reason = fields.pop("reason", "")
        owner = resolve_owner(request, fields.pop("owner", None))
        # Refuse what the caller could never hand out before asking anyone to approve it.
        services.check_mintable(workspace=request.workspace, actor=request.actor, fields=fields)
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=proposals.key_create(request.workspace, owner, fields),
            reason=reason,
            confirmed=confirmed,
            confirmation_token=token,
        )
        return door_response(result, _issued, status=status.HTTP_201_CREATED)


class KeyDetailView(WorkspaceAPIView):
    scope_map = {"GET": KEYS_READ, "PATCH": KEYS_WRITE}

    @extend_schema(operation_id="keys_get", responses=MachineKeySerializer)
    def get(self, request, pk):
        return Response(MachineKeySerializer(_key_or_404(request, pk)).data)

    @extend_schema(
        operation_id="keys_update",
        description="Switch unattended mode. Switching it on is a governed operation: 202 "
        "with a confirmation token first, applied once another person approves; switching "
        "it off applies at once.",
        request=KeyUpdateSerializer,
        responses={200: MachineKeySerializer, 202: ActionConfirmationSerializer},
    )
    def patch(self, request, pk):
        key = _key_or_404(request, pk)
        data = KeyUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=proposals.key_set_unattended(key, fields["unattended_mode"]),
            reason=fields["reason"],
            confirmed=fields["confirmed"],
            confirmation_token=fields["confirmation_token"],
        )
        return door_response(result, lambda k: MachineKeySerializer(k).data)


class KeyRevokeView(WorkspaceAPIView):
    scope_map = {"POST": KEYS_WRITE}

    @extend_schema(
        operation_id="keys_revoke", request=ReasonSerializer, responses=MachineKeySerializer
    )
    def post(self, request, pk):
        key = _key_or_404(request, pk)
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = services.key_revoke(
            key=key, actor=request.actor, reason=data.validated_data["reason"]
        )
        return Response(MachineKeySerializer(key).data)


class KeyClaimView(WorkspaceAPIView):
    """The owner takes the secret of a key someone else made or rotated for them."""

    principals = (USER,)

    schema_error_statuses = {"POST": (409,)}

    @extend_schema(operation_id="keys_claim", request=None, responses=IssuedKeySerializer)
    def post(self, request, pk):
        key = _key_or_404(request, pk)
        issued = services.key_claim_secret(key=key, actor=request.actor)
        return Response(_issued(issued))


class KeyRotateView(WorkspaceAPIView):
    scope_map = {"POST": KEYS_WRITE}
    schema_error_statuses = {"POST": (409,)}  # conflict: a revoked key cannot be rotated

    @extend_schema(
        operation_id="keys_rotate", request=KeyRotateSerializer, responses=IssuedKeySerializer
    )
    def post(self, request, pk):
        key = _key_or_404(request, pk)
        data = KeyRotateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        grace = data.validated_data.get("grace_seconds")
        issued = services.key_rotate(
            key=key,
            actor=request.actor,
            grace=None if grace is None else timedelta(seconds=grace),
        )
        return Response(_issued(issued))
