from datetime import timedelta

from django.db import transaction
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import door, proposals
from approvals.api.door_responses import door_response
from approvals.api.serializers import ActionConfirmationSerializer
from common.actor import Actor
from common.api.views import USER, WorkspaceAPIView
from common.errors import WardenError
from common.scopes import MEMBERS_WRITE, WORKSPACE_ADMIN
from notifications import governance as notification_governance
from tenants import services
from tenants.api.serializers import (
    ConfirmationFieldsSerializer,
    InvitationListSerializer,
    InvitationSerializer,
    MemberInvitedSerializer,
    MembershipCreateSerializer,
    MembershipListSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    WhoAmISerializer,
    WorkspaceDeleteSerializer,
    WorkspaceDetailSerializer,
    WorkspaceSerializer,
    WorkspaceUpdateSerializer,
)
from tenants.models import Workspace
from tenants.selectors import membership_list, open_invitations_for


class WhoAmIView(WorkspaceAPIView):
    """Who the credential is, in which workspace, and what the workspace allows."""

    @extend_schema(operation_id="whoami_get", responses=WhoAmISerializer)
    def get(self, request):
        workspace = request.workspace
        body = {
            "workspace": WorkspaceSerializer(workspace).data,
            "mode": workspace.mode,
            "dry_run": workspace.is_dry_run,
            "writes_enabled": workspace.writes_enabled,
        }
        if request.principal.is_key:
            key = request.principal.key
            body["principal"] = "key"
            body["key"] = {
                "id": str(key.pk),
                "name": key.name,
                "prefix": key.prefix,
                "scopes": key.scopes,
                "tool_allowlist": key.tool_allowlist,
                "expires_at": key.expires_at,
                "unattended_mode": key.unattended_mode,
            }
            body["scopes"] = key.scopes
        else:
            body["principal"] = "user"
            body["user"] = {"email": request.user.email}
        return Response(body)


def _membership_or_404(request, pk):
    membership = membership_list(workspace=request.workspace).filter(pk=pk).first()
    if membership is None:
        raise WardenError("not_found", "Not found.")
    return membership


class MemberListView(WorkspaceAPIView):
    scope_map = {"GET": MEMBERS_WRITE, "POST": MEMBERS_WRITE}
    schema_error_statuses = {"POST": (409,)}  # conflict: already a member

    @extend_schema(operation_id="members_list", responses=MembershipListSerializer)
    def get(self, request):
        members = membership_list(workspace=request.workspace)
        return Response({"results": MembershipSerializer(members, many=True).data})

    @extend_schema(
        operation_id="members_create",
        request=MembershipCreateSerializer,
        responses={
            201: MembershipSerializer,
            202: PolymorphicProxySerializer(
                component_name="MemberAccepted",
                serializers=[ActionConfirmationSerializer, MemberInvitedSerializer],
                resource_type_field_name=None,
            ),
        },
    )
    def post(self, request):
        data = MembershipCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            user = services.user_get_or_create(email=data.validated_data["email"])
            if services.needs_invitation(user=user, workspace=request.workspace):
                # Offering a role that may approve is governed like adding one.
                result = door.governed_change(
                    workspace=request.workspace,
                    actor=request.actor,
                    proposal=proposals.invitation_create(
                        request.workspace, user, data.validated_data["role"]
                    ),
                    reason=data.validated_data["reason"],
                )
                return door_response(
                    result,
                    lambda i: {"status": "invited", "invitation": InvitationSerializer(i).data},
                    status=202,
                )
            result = door.governed_change(
                workspace=request.workspace,
                actor=request.actor,
                proposal=proposals.membership_add(
                    request.workspace, user, data.validated_data["role"]
                ),
                reason=data.validated_data["reason"],
            )
        return door_response(result, lambda m: MembershipSerializer(m).data, status=201)


class MemberDetailView(WorkspaceAPIView):
    scope_map = {"GET": MEMBERS_WRITE, "PATCH": MEMBERS_WRITE, "DELETE": MEMBERS_WRITE}
    # last_owner: the workspace keeps at least one owner
    schema_error_statuses = {"PATCH": (409,), "DELETE": (409,)}

    @extend_schema(operation_id="members_get", responses=MembershipSerializer)
    def get(self, request, pk):
        return Response(MembershipSerializer(_membership_or_404(request, pk)).data)

    @extend_schema(
        operation_id="members_update",
        request=MembershipUpdateSerializer,
        responses={200: MembershipSerializer, 202: ActionConfirmationSerializer},
    )
    def patch(self, request, pk):
        membership = _membership_or_404(request, pk)
        data = MembershipUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=proposals.membership_change_role(membership, data.validated_data["role"]),
            reason=data.validated_data["reason"],
            confirmed=data.validated_data["confirmed"],
            confirmation_token=data.validated_data["confirmation_token"],
        )
        return door_response(result, lambda m: MembershipSerializer(m).data)

    @extend_schema(
        operation_id="members_delete",
        request=ConfirmationFieldsSerializer,
        responses={204: None, 202: ActionConfirmationSerializer},
    )
    def delete(self, request, pk):
        membership = _membership_or_404(request, pk)
        data = ConfirmationFieldsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=proposals.membership_remove(membership),
            reason=data.validated_data["reason"],
            confirmed=data.validated_data["confirmed"],
            confirmation_token=data.validated_data["confirmation_token"],
        )
        return door_response(result, lambda m: None, status=204)


class WorkspaceView(WorkspaceAPIView):
    """The credential's workspace. Changes that loosen governance (going live, writes,
    outbound, two approvals off, shorter retention, the sensitivity floor, deleting)
    go through the governed-operation door: 202 with a token, applied once another
    human approves (approvals.door)."""

    scope_map = {"PATCH": WORKSPACE_ADMIN, "DELETE": WORKSPACE_ADMIN}

    @extend_schema(operation_id="workspace_get", responses=WorkspaceDetailSerializer)
    def get(self, request):
        return Response(WorkspaceDetailSerializer(request.workspace).data)

    @extend_schema(
        operation_id="workspace_update",
        request=WorkspaceUpdateSerializer,
        responses={200: WorkspaceDetailSerializer, 202: ActionConfirmationSerializer},
    )
    def patch(self, request):
        data = WorkspaceUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = {k: v for k, v in data.validated_data.items() if k in data.initial_data}
        confirmed = changes.pop("confirmed", False)
        token = changes.pop("confirmation_token", "")
        reason = changes.pop("reason", "")
        if "outbound_hosts" in changes:
            hosts = changes.pop("outbound_hosts")
            if changes:
                message = "Send outbound_hosts alone (it is not stored with the other settings)."
                raise WardenError("validation_error", message, {"outbound_hosts": [message]})
            proposal = notification_governance.outbound_hosts_update(request.workspace, hosts)
        else:
            if "confirmation_ttl_seconds" in changes:
                seconds = changes.pop("confirmation_ttl_seconds")
                changes["confirmation_ttl"] = timedelta(seconds=seconds)
            proposal = proposals.workspace_update(request.workspace, changes)
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=proposal,
            reason=reason,
            confirmed=confirmed,
            confirmation_token=token,
        )

        def render(changed) -> dict:
            # The allowlist's applier answers with the settings row, not the workspace.
            if not isinstance(changed, Workspace):
                changed = Workspace.objects.get(pk=request.workspace.pk)
            return WorkspaceDetailSerializer(changed).data

        return door_response(result, render)

    @extend_schema(
        operation_id="workspace_delete",
        request=WorkspaceDeleteSerializer,
        responses={204: None, 202: ActionConfirmationSerializer},
    )
    def delete(self, request):
        data = WorkspaceDeleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=proposals.workspace_delete(request.workspace),
            reason=data.validated_data["reason"],
            confirmed=data.validated_data["confirmed"],
            confirmation_token=data.validated_data["confirmation_token"],
        )
        return door_response(result, lambda w: None, status=204)


class InvitationListView(APIView):
    """The signed-in person's open invitations, across workspaces (they may belong to
    none yet, or to several)."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    principals = (USER,)

    @extend_schema(operation_id="invitations_list", responses=InvitationListSerializer)
    def get(self, request):
        invitations = open_invitations_for(user=request.user)
        return Response({"results": InvitationSerializer(invitations, many=True).data})


@extend_schema_view(
    post=extend_schema(
        operation_id="invitations_accept", request=None, responses=InvitationSerializer
    )
)
class InvitationAnswerView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    principals = (USER,)
    schema_error_statuses = {"POST": (409,)}  # conflict: no longer open
    accept = True

    def post(self, request, pk):
        invitation = open_invitations_for(user=request.user).filter(pk=pk).first()
        if invitation is None:
            raise WardenError("not_found", "Not found.")
        with door.accepting_invitation():
            invitation = services.invitation_answer(
                invitation=invitation, accept=self.accept, actor=Actor.for_request(request)
            )
        return Response(InvitationSerializer(invitation).data)


@extend_schema_view(
    post=extend_schema(
        operation_id="invitations_decline", request=None, responses=InvitationSerializer
    )
)
class InvitationDeclineView(InvitationAnswerView):
    accept = False
