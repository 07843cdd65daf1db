"""Thin views: parse, call a service or selector, render. Scope checks come from
WorkspaceAPIView (scope_map/principals); the gate itself checks action scopes."""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response

from approvals import catalog, door, gate, proposals
from approvals.api.door_responses import door_response
from approvals.api.presenter import outcome_response
from approvals.api.serializers import (
    ActionAllowedSerializer,
    ActionConfirmationSerializer,
    ActionCreateSerializer,
    ActionRequestSerializer,
    ActionResultSerializer,
    ActionWaitSerializer,
    ApprovalListSerializer,
    ApprovalSerializer,
    CallableToolSerializer,
    ToolListSerializer,
    ToolSerializer,
    ToolWriteSerializer,
    VerdictSerializer,
)
from approvals.asking import action_submit
from approvals.confirmations import APPROVE_PERMISSION, confirmation_approve, confirmation_deny
from approvals.results import action_report_result
from approvals.selectors import (
    action_request_get,
    confirmation_get,
    pending_confirmations,
    tool_get,
    tool_list,
    tools_callable_by_key,
)
from approvals.waiting import PARK, RESUMED, action_request_wait
from common.api.serializers import ChangeReasonSerializer, change_reason
from common.api.views import KEY, USER, WorkspaceAPIView
from common.errors import WardenError
from common.scopes import TOOLS_WRITE
from gateway.api.rest import execute_response

MAX_APPROVALS_LISTED = 200


def _not_found() -> WardenError:
    return WardenError("not_found", "Not found.")


class ActionListView(WorkspaceAPIView):
    """Ask before acting. The gate checks scope, allowlist, writes switch and
    confirmation rules for the named tool."""

    principals = (KEY,)

    @extend_schema(
        operation_id="actions_ask",
        request=ActionCreateSerializer,
        responses={200: ActionAllowedSerializer, 202: ActionConfirmationSerializer},
    )
    def post(self, request):
        data = ActionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values["execute"]:
            return execute_response(request, values)
        outcome = action_submit(
            key=request.auth,
            tool_name=values["tool"],
            params=values["params"],
            actor=request.actor,
            reason=values["reason"],
            idempotency_key=values["idempotency_key"],
            confirmed=values["confirmed"],
            confirmation_token=values["confirmation_token"],
        )
        return outcome_response(outcome)


class ActionDetailView(WorkspaceAPIView):
    """The key's own action request. `?wait=N` long-polls (approvals.waiting): one
    request, so one unit of the key's rate limit, however long it waits (an async
    server runs a parked wait again for its answer, marked resumed: not counted)."""

    principals = (KEY,)

    def get_throttles(self):
        if self.request.META.get(RESUMED):
            return []
        return super().get_throttles()

    @extend_schema(
        operation_id="actions_get",
        parameters=[ActionWaitSerializer],
        responses=ActionRequestSerializer,
    )
    def get(self, request, pk):
        query = ActionWaitSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        action = action_request_wait(
            workspace=request.workspace,
            pk=pk,
            key=request.auth,
            seconds=0 if request.META.get(RESUMED) else query.validated_data["wait"],
            park=request.META.get(PARK),
        )
        if action is None:
            raise _not_found()
        return Response(ActionRequestSerializer(action).data)


class ActionResultView(WorkspaceAPIView):
    principals = (KEY,)
    schema_error_statuses = {"POST": (409,)}  # conflict: the result was already reported

    @extend_schema(
        operation_id="actions_report_result",
        request=ActionResultSerializer,
        responses=ActionRequestSerializer,
    )
    def post(self, request, pk):
        action = action_request_get(workspace=request.workspace, pk=pk, key=request.auth)
        if action is None:
            raise _not_found()
        data = ActionResultSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        action = action_report_result(
            action_request=action,
            key=request.auth,
            status=data.validated_data["status"],
            output=data.validated_data["output"],
            actor=request.actor,
        )
        return Response(ActionRequestSerializer(action).data)


def _callable_tool(key, workspace, tool) -> dict:
    effective = gate.tool_confirmation(workspace, tool, unattended=key.unattended_mode)
    return {
        "id": tool.pk,
        "name": tool.name,
        "description": tool.description,
        "level": tool.level,
        "data_classes": list(tool.data_classes),
        "irreversible": tool.irreversible,
        "confirmation": effective.rule,
        "confirmation_reason": effective.reason,
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
    schema_error_statuses = {"POST": (409,)}  # conflict: a tool with this name exists

    @extend_schema(
        operation_id="tools_list",
        description="A key sees the tools it may call (CallableTool); a human with "
        "tools:write sees the catalog (Tool).",
        responses=ToolListSerializer,
    )
    def get(self, request):
        if request.principal.is_key:
            tools = tools_callable_by_key(key=request.auth, workspace=request.workspace)
            results = [_callable_tool(request.auth, request.workspace, t) for t in tools]
            return Response({"results": CallableToolSerializer(results, many=True).data})
        request.principal.require_scope(TOOLS_WRITE)
        tools = tool_list(workspace=request.workspace)
        return Response({"results": ToolSerializer(tools, many=True).data})

    @extend_schema(
        operation_id="tools_create",
        request=ToolWriteSerializer,
        responses={201: ToolSerializer, 202: ActionConfirmationSerializer},
    )
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
    schema_error_statuses = {"PATCH": (409,)}

    def _tool(self, request, pk):
        tool = tool_get(workspace=request.workspace, pk=pk)
        if tool is None:
            raise _not_found()
        return tool

    @extend_schema(
        operation_id="tools_get",
        responses=PolymorphicProxySerializer(
            component_name="AnyToolDetail",
            serializers=[ToolSerializer, CallableToolSerializer],
            resource_type_field_name=None,
        ),
    )
    def get(self, request, pk):
        if request.principal.is_key:
            callable_tools = tools_callable_by_key(key=request.auth, workspace=request.workspace)
            tool = next((t for t in callable_tools if str(t.pk) == str(pk)), None)
            if tool is None:
                raise _not_found()
            return Response(
                CallableToolSerializer(_callable_tool(request.auth, request.workspace, tool)).data
            )
        request.principal.require_scope(TOOLS_WRITE)
        return Response(ToolSerializer(self._tool(request, pk)).data)

    @extend_schema(
        operation_id="tools_update",
        request=ToolWriteSerializer,
        responses={200: ToolSerializer, 202: ActionConfirmationSerializer},
    )
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

    @extend_schema(
        operation_id="tools_delete", request=ChangeReasonSerializer, responses={204: None}
    )
    def delete(self, request, pk):
        tool = self._tool(request, pk)
        catalog.tool_delete(tool=tool, actor=request.actor, reason=change_reason(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _require_approver(request) -> None:
    request.principal.require_permission(
        APPROVE_PERMISSION, "You may not approve actions in this workspace."
    )


class ApprovalListView(WorkspaceAPIView):
    """Pending confirmations, oldest first. Human sessions with approve_actions only."""

    principals = (USER,)

    @extend_schema(operation_id="approvals_list", responses=ApprovalListSerializer)
    def get(self, request):
        _require_approver(request)
        pending = pending_confirmations(workspace=request.workspace).prefetch_related(
            "approval_records"
        )[:MAX_APPROVALS_LISTED]
        return Response({"results": ApprovalSerializer(pending, many=True).data})


class _VerdictView(WorkspaceAPIView):
    principals = (USER,)
    verdict = ""
    # already_decided (409), confirmation_expired (410)
    schema_error_statuses = {"POST": (409, 410)}

    def post(self, request, pk):
        _require_approver(request)
        confirmation = confirmation_get(workspace=request.workspace, pk=pk)
        if confirmation is None:
            raise _not_found()
        data = VerdictSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decide = confirmation_approve if self.verdict == "approve" else confirmation_deny
        confirmation = decide(
            confirmation=confirmation, reason=data.validated_data["reason"], actor=request.actor
        )
        confirmation = confirmation_get(workspace=request.workspace, pk=confirmation.pk)
        return Response(ApprovalSerializer(confirmation).data)


@extend_schema_view(
    post=extend_schema(
        operation_id="approvals_approve", request=VerdictSerializer, responses=ApprovalSerializer
    )
)
class ApprovalApproveView(_VerdictView):
    verdict = "approve"


@extend_schema_view(
    post=extend_schema(
        operation_id="approvals_deny", request=VerdictSerializer, responses=ApprovalSerializer
    )
)
class ApprovalDenyView(_VerdictView):
    verdict = "deny"
