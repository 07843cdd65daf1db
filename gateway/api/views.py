"""Connectors API: thin views over gateway.services / gateway.selectors."""

from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from approvals import door
from approvals.api.door_responses import door_response
from approvals.api.serializers import ActionConfirmationSerializer
from common.api.serializers import ChangeReasonSerializer, change_reason
from common.api.views import WorkspaceAPIView
from common.errors import WardenError
from common.scopes import CONNECTORS_READ, CONNECTORS_WRITE
from gateway import governance, services
from gateway.api.serializers import (
    ConnectorListSerializer,
    ConnectorSerializer,
    ConnectorUpdateSerializer,
    ConnectorWriteSerializer,
    SyncReportSerializer,
)
from gateway.selectors import connector_get, connector_list


def _connector_or_404(request, pk):
    connector = connector_get(workspace=request.workspace, pk=pk)
    if connector is None:
        raise WardenError("not_found", "Not found.")
    return connector


class ConnectorListView(WorkspaceAPIView):
    scope_map = {"GET": CONNECTORS_READ, "POST": CONNECTORS_WRITE}

    @extend_schema(operation_id="connectors_list", responses=ConnectorListSerializer)
    def get(self, request):
        connectors = connector_list(workspace=request.workspace).prefetch_related("tools")
        return Response({"results": ConnectorSerializer(connectors, many=True).data})

    @extend_schema(
        operation_id="connectors_create",
        description="Adding a connector is a governed operation: the answer is 202 with a "
        "confirmation, and the connector exists once another human approves; the same "
        "request again with confirmed and the token answers it (201), once.",
        request=ConnectorWriteSerializer,
        responses={201: ConnectorSerializer, 202: ActionConfirmationSerializer},
    )
    @sensitive_variables("values")
    def post(self, request):
        data = ConnectorWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason", "")
        confirmed = values.pop("confirmed", False)
        token = values.pop("confirmation_token", "")
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=governance.connector_create(request.workspace, values, recall=confirmed),
            reason=reason,
            confirmed=confirmed,
            confirmation_token=token,
        )
        return door_response(result, lambda c: ConnectorSerializer(c).data, status=201)


class ConnectorDetailView(WorkspaceAPIView):
    scope_map = {"GET": CONNECTORS_READ, "PATCH": CONNECTORS_WRITE, "DELETE": CONNECTORS_WRITE}

    @extend_schema(operation_id="connectors_get", responses=ConnectorSerializer)
    def get(self, request, pk):
        return Response(ConnectorSerializer(_connector_or_404(request, pk)).data)

    @extend_schema(
        operation_id="connectors_update",
        description="A new URL or new credential values are governed (202 with a "
        "confirmation; once approved, the same request with confirmed and the token "
        "answers the applied connector, once); other changes, and dropping headers, "
        "apply at once.",
        request=ConnectorUpdateSerializer,
        responses={200: ConnectorSerializer, 202: ActionConfirmationSerializer},
    )
    @sensitive_variables("changes")
    def patch(self, request, pk):
        connector = _connector_or_404(request, pk)
        data = ConnectorUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        reason = changes.pop("reason", "")
        confirmed = changes.pop("confirmed", False)
        token = changes.pop("confirmation_token", "")
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=governance.connector_update(connector, changes),
            reason=reason,
            confirmed=confirmed,
            confirmation_token=token,
        )
        return door_response(result, lambda c: ConnectorSerializer(c).data)

    @extend_schema(
        operation_id="connectors_delete", request=ChangeReasonSerializer, responses={204: None}
    )
    def delete(self, request, pk):
        connector = _connector_or_404(request, pk)
        services.connector_delete(
            connector=connector, actor=request.actor, reason=change_reason(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConnectorSyncView(WorkspaceAPIView):
    """Import the upstream catalog; new and changed tools are disabled until enabled."""

    scope_map = {"POST": CONNECTORS_WRITE}

    @extend_schema(operation_id="connectors_sync", request=None, responses=SyncReportSerializer)
    def post(self, request, pk):
        report = services.connector_sync(
            connector=_connector_or_404(request, pk), actor=request.actor
        )
        return Response(SyncReportSerializer(report).data)
