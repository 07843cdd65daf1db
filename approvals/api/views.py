"""Thin views: parse, call a service or selector, render. Scope checks come from
WorkspaceAPIView (scope_map/principals); the gate itself checks action scopes."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from approvals import catalog, door, gate, proposals, services
from approvals.api.door_responses import door_response
from approvals.api.serializers import (
    ActionAllowedSerializer,
    ActionConfirmationSerializer,
    ActionCreateSerializer,
    ActionRequestSerializer,
    ActionResultSerializer,
    ActionWaitSerializer,
    ApprovalSerializer,
    CallableToolSerializer,
    ReasonRequiredSerializer,
    ToolSerializer,
    ToolWriteSerializer,
)
from approvals.selectors import (
    action_request_get,
    confirmation_get,
    pending_confirmations,
    tool_get,
    tool_list,
    tools_callable_by_key,
)
from approvals.waiting import action_request_wait
from common.api.views import KEY, USER, WorkspaceAPIView, require_scope
from common.errors import WardenError
from gateway.api.rest import execute_response
from keys.models import MachineKey
from keys.scopes import TOOLS_WRITE
from tenants.selectors import user_can

MAX_APPROVALS_LISTED = 200


def _not_found() -> WardenError:
    return WardenError("not_found", "Not found.")


class ActionListView(WorkspaceAPIView):
    """Ask before acting. The gate checks scope, allowlist, writes switch and
    confirmation rules for the named tool."""

    principals = (KEY,)

    @extend_schema(
        request=ActionCreateSerializer,
        responses={
            200: ActionAllowedSerializer,
            202: ActionConfirmationSerializer,
            400: OpenApiResponse(description="validation_error"),
            403: OpenApiResponse(description="denied: see the error code"),
            409: OpenApiResponse(description="confirmation_pending / confirmation_used"),
            410: OpenApiResponse(description="confirmation_expired"),
        },
    )
    def post(self, request):
        data = ActionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values["execute"]:
            return execute_response(request, values)
        answer = services.action_submit(
            key=request.auth,
            tool_name=values["tool"],
            params=values["params"],
            actor=request.actor,
            reason=values["reason"],
            idempotency_key=values["idempotency_key"],
            confirmed=values["confirmed"],
            confirmation_token=values["confirmation_token"],
        )
        return Response(answer.body, status=answer.status)


class ActionDetailView(WorkspaceAPIView):
    """The key's own action request. `?wait=N` long-polls (approvals.waiting): one
    request, so one unit of the key's rate limit, however long it waits."""

    principals = (KEY,)

    @extend_schema(parameters=[ActionWaitSerializer], responses=ActionRequestSerializer)
    def get(self, request, pk):
        query = ActionWaitSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        action = action_request_wait(
            workspace=request.workspace,
            pk=pk,
            key=request.auth,
            seconds=query.validated_data["wait"],
        )
        if action is None:
            raise _not_found()
        return Response(ActionRequestSerializer(action).data)


class ActionResultView(WorkspaceAPIView):
    principals = (KEY,)

    @extend_schema(request=ActionResultSerializer, responses=ActionRequestSerializer)
    def post(self, request, pk):
        action = action_request_get(workspace=request.workspace, pk=pk, key=request.auth)
        if action is None:
            raise _not_found()
        data = ActionResultSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        action = services.action_report_result(
            action_request=action,
            key=request.auth,
            status=data.validated_data["status"],
            output=data.validated_data["output"],
            actor=request.actor,
        )
        return Response(ActionRequestSerializer(action).data)


def _callable_tool(key, workspace, tool) -> dict:
    return {
        "id": tool.pk,
        "name": tool.name,
        "description": tool.description,
        "level": tool.level,
        "data_classes": list(tool.data_classes),
        "irreversible": tool.irreversible,
        "confirmation": gate.effective_confirmation(key, workspace, tool),
    }


def _tool_write_fields(request, *, partial: bool) -> tuple[dict, str]:
    data = ToolWriteSerializer(data=request.data, partial=partial)
    data.is_valid(raise_exception=True)
    fields = dict(data.validated_data)
    reason = fields.pop("reason", "")
    return fields, reason


class ToolListView(WorkspaceAPIView):
    """Keys see only the tools they may call; humans with manage_tools see the catalog."""

    scope_map = {"POST": TOOLS_WRITE}

    @extend_schema(responses=CallableToolSerializer(many=True))
    def get(self, request):
        if isinstance(request.auth, MachineKey):
            tools = tools_callable_by_key(key=request.auth, workspace=request.workspace)
            results = [_callable_tool(request.auth, request.workspace, t) for t in tools]
            return Response({"results": CallableToolSerializer(results, many=True).data})
        require_scope(request, request.workspace, TOOLS_WRITE)
        tools = tool_list(workspace=request.workspace)
        return Response({"results": ToolSerializer(tools, many=True).data})

    @extend_schema(request=ToolWriteSerializer, responses={201: ToolSerializer})
    def post(self, request):
        fields, reason = _tool_write_fields(request, partial=False)
        catalog.check_tool_fields(workspace=request.workspace, fields=fields)
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=proposals.tool_create(request.workspace, fields),
            reason=reason,
        )
        return door_response(result, lambda t: ToolSerializer(t).data, status=201)


class ToolDetailView(WorkspaceAPIView):
    scope_map = {"PATCH": TOOLS_WRITE, "DELETE": TOOLS_WRITE}

    def _tool(self, request, pk):
        tool = tool_get(workspace=request.workspace, pk=pk)
        if tool is None:
            raise _not_found()
        return tool

    @extend_schema(responses=ToolSerializer)
    def get(self, request, pk):
        if isinstance(request.auth, MachineKey):
            callable_tools = tools_callable_by_key(key=request.auth, workspace=request.workspace)
            tool = next((t for t in callable_tools if str(t.pk) == str(pk)), None)
            if tool is None:
                raise _not_found()
            return Response(
                CallableToolSerializer(_callable_tool(request.auth, request.workspace, tool)).data
            )
        require_scope(request, request.workspace, TOOLS_WRITE)
        return Response(ToolSerializer(self._tool(request, pk)).data)

    @extend_schema(request=ToolWriteSerializer, responses=ToolSerializer)
    def patch(self, request, pk):
        tool = self._tool(request, pk)
        fields, reason = _tool_write_fields(request, partial=True)
        catalog.check_tool_fields(workspace=request.workspace, fields=fields, tool=tool)
        result = door.governed_change(
            workspace=request.workspace,
            actor=request.actor,
            proposal=proposals.tool_update(tool, fields),
            reason=reason,
        )
        return door_response(result, lambda t: ToolSerializer(t).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        catalog.tool_delete(tool=self._tool(request, pk), actor=request.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _require_approver(request) -> None:
    if not user_can(request.user, services.APPROVE_PERMISSION, request.workspace):
        raise WardenError(
            "forbidden_by_scope",
            "You may not approve actions in this workspace.",
            {"required_permission": services.APPROVE_PERMISSION},
        )


class ApprovalListView(WorkspaceAPIView):
    """Pending confirmations, oldest first. Human sessions with approve_actions only."""

    principals = (USER,)

    @extend_schema(responses=ApprovalSerializer(many=True))
    def get(self, request):
        _require_approver(request)
        pending = pending_confirmations(workspace=request.workspace).prefetch_related(
            "approval_records"
        )[:MAX_APPROVALS_LISTED]
        return Response({"results": ApprovalSerializer(pending, many=True).data})


class _VerdictView(WorkspaceAPIView):
    principals = (USER,)
    verdict = ""

    @extend_schema(request=ReasonRequiredSerializer, responses=ApprovalSerializer)
    def post(self, request, pk):
        _require_approver(request)
        confirmation = confirmation_get(workspace=request.workspace, pk=pk)
        if confirmation is None:
            raise _not_found()
        reason = request.data.get("reason") if hasattr(request.data, "get") else None
        decide = (
            services.confirmation_approve
            if self.verdict == "approve"
            else services.confirmation_deny
        )
        confirmation = decide(
            confirmation=confirmation,
            reason=reason if isinstance(reason, str) else "",
            actor=request.actor,
        )
        confirmation = confirmation_get(workspace=request.workspace, pk=confirmation.pk)
        return Response(ApprovalSerializer(confirmation).data)


class ApprovalApproveView(_VerdictView):
    verdict = "approve"


class ApprovalDenyView(_VerdictView):
    verdict = "deny"
