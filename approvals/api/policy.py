"""Policy as code over HTTP (docs: "Policy as code"). Reading, planning, testing,
applying and rolling back need `tools:write` (humans: manage_tools); a document that
changes the workspace's settings also needs `workspace:admin` (humans:
manage_workspace), checked on what the plan changes, so a workspace admin can apply a
catalog-only document. Any credential may read the JSON Schema: it holds no tenant
data."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from approvals.policy.document import dump, export_document, parse_document, published_schema
from approvals.policy.planning import plan
from approvals.policy.selectors import (
    document_diff,
    policy_version_for,
    policy_version_get,
    policy_version_list,
    policy_version_neighbours,
)
from approvals.policy.services import policy_apply, policy_rollback
from approvals.policy.testing import parse_cases, run_cases
from common.api.serializers import StrictSerializer
from common.api.views import WorkspaceAPIView
from common.errors import WardenError
from common.scopes import TOOLS_WRITE, WORKSPACE_ADMIN

MAX_VERSIONS_LISTED = 200


class DocumentField(serializers.JSONField):
    """A policy document: a JSON object, or YAML/JSON text."""


class PolicyWriteSerializer(StrictSerializer):
    document = DocumentField(help_text="The policy document: an object, or YAML/JSON text.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class PolicyPlanSerializer(StrictSerializer):
    document = DocumentField(help_text="The policy document: an object, or YAML/JSON text.")


class PolicyTestSerializer(StrictSerializer):
    cases = DocumentField(help_text="The policy tests: an object with `cases`, or YAML text.")
    proposed = DocumentField(
        required=False, help_text="A proposed policy document; default: the current policy."
    )


class RollbackSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class VersionListQuerySerializer(StrictSerializer):
    policy_version = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=2**31 - 1,
        help_text="An audit entry's or request's `policy_version` (the catalog counter): "
        "answer only the policy version in force when it was decided.",
    )


class VersionDetailQuerySerializer(StrictSerializer):
    against = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Another version's number: `diff_against` compares the two "
        "(that version's document -> this one's).",
    )


class PolicyDocumentSerializer(serializers.Serializer):
    apiVersion = serializers.CharField()
    workspace = serializers.CharField()
    settings = serializers.DictField()
    automation = serializers.DictField(help_text="Automation and notification settings.")
    tools = serializers.ListField(child=serializers.DictField())


class PlanChangeSerializer(serializers.Serializer):
    target = serializers.CharField()
    verb = serializers.CharField()
    name = serializers.CharField()
    narrows = serializers.BooleanField()
    immediate = serializers.ListField(child=serializers.CharField())
    governed = serializers.ListField(child=serializers.CharField())
    operations = serializers.ListField(child=serializers.CharField())
    approvals_required = serializers.IntegerField()
    changes = serializers.ListField(child=serializers.DictField())


class PlanSerializer(serializers.Serializer):
    workspace = serializers.CharField()
    changes = PlanChangeSerializer(many=True)
    narrows = serializers.BooleanField()
    operations = serializers.ListField(child=serializers.CharField())
    approvals_required = serializers.IntegerField()
    impact = serializers.JSONField(allow_null=True)


class ApplySerializer(serializers.Serializer):
    plan = PlanSerializer()
    applied = serializers.ListField(child=serializers.CharField())
    pending = serializers.ListField(child=serializers.CharField())
    version = serializers.IntegerField(allow_null=True)
    request = serializers.DictField(allow_null=True)


class TestCaseSerializer(serializers.Serializer):
    name = serializers.CharField()
    passed = serializers.BooleanField()
    expected = serializers.DictField()
    got = serializers.DictField()
    rule = serializers.CharField()
    reason = serializers.CharField()


class TestRunSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    total = serializers.IntegerField()
    failed = serializers.IntegerField()
    cases = TestCaseSerializer(many=True)


class VersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    source = serializers.CharField()
    author = serializers.CharField()
    approvers = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField()
    operations = serializers.ListField(child=serializers.CharField())
    policy_version = serializers.IntegerField()
    diff = serializers.DictField()


class VersionDetailSerializer(VersionSerializer):
    document = serializers.DictField()
    diff_to_current = serializers.DictField()
    previous = serializers.IntegerField(allow_null=True)
    next = serializers.IntegerField(allow_null=True)
    against = serializers.IntegerField(required=False)
    diff_against = serializers.DictField(required=False)


class VersionListSerializer(serializers.Serializer):
    results = VersionSerializer(many=True)


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _document(value):
    if not isinstance(value, dict | str):
        raise WardenError(
            "policy_invalid",
            "The policy document must be an object or YAML/JSON text.",
            {"errors": [{"path": "$", "code": "type", "message": "An object or text."}]},
        )
    return value


def _version(version, *, detail=False, current=None) -> dict:
    body = {
        "number": version.number,
        "created_at": version.created_at,
        "source": version.source,
        "author": version.author,
        "approvers": version.approvers,
        "reason": version.reason,
        "operations": version.operations,
        "policy_version": version.policy_version,
        "diff": version.diff,
    }
    if detail:
        body["document"] = version.document
        body["diff_to_current"] = document_diff(version.document, current or {})
    return body


class PolicySchemaView(WorkspaceAPIView):
    """The published JSON Schema of the policy document: no tenant data, so any
    credential of any workspace may read it."""

    @extend_schema(
        operation_id="policy_schema",
        responses={200: OpenApiResponse(description="JSON Schema (draft 2020-12)")},
    )
    def get(self, request):
        return Response(published_schema())


class PolicyView(WorkspaceAPIView):
    scope_map = {"GET": TOOLS_WRITE}

    @extend_schema(operation_id="policy_export", responses=PolicyDocumentSerializer)
    def get(self, request):
        document = export_document(request.workspace)
        if request.query_params.get("format") == "yaml":
            return Response({"yaml": dump(document)})
        return Response(document)


class PolicyPlanView(WorkspaceAPIView):
    scope_map = {"POST": TOOLS_WRITE}

    @extend_schema(
        operation_id="policy_plan", request=PolicyPlanSerializer, responses=PlanSerializer
    )
    def post(self, request):
        body = _valid(PolicyPlanSerializer, request)
        document = parse_document(_document(body["document"]))
        return Response(plan(request.workspace, document).as_dict())


class PolicyApplyView(WorkspaceAPIView):
    scope_map = {"POST": TOOLS_WRITE}

    @extend_schema(
        operation_id="policy_apply",
        request=PolicyWriteSerializer,
        responses={200: ApplySerializer, 202: ApplySerializer},
    )
    def post(self, request):
        body = _valid(PolicyWriteSerializer, request)
        result = policy_apply(
            workspace=request.workspace,
            document=_document(body["document"]),
            actor=request.actor,
            reason=body.get("reason", ""),
            may_change_settings=request.principal.has_scope(WORKSPACE_ADMIN),
        )
        code = status.HTTP_202_ACCEPTED if result.outcome is not None else status.HTTP_200_OK
        return Response(result.as_dict(), status=code)


class PolicyTestView(WorkspaceAPIView):
    scope_map = {"POST": TOOLS_WRITE}

    @extend_schema(
        operation_id="policy_test", request=PolicyTestSerializer, responses=TestRunSerializer
    )
    def post(self, request):
        body = _valid(PolicyTestSerializer, request)
        cases = parse_cases(_document(body["cases"]))
        if body.get("proposed") is not None:
            document = parse_document(_document(body["proposed"]))
            if document.workspace != request.workspace.slug:
                raise WardenError("workspace_mismatch", "The document names another workspace.", {})
        else:
            document = parse_document(export_document(request.workspace))
        return Response(run_cases(request.workspace, document, cases).as_dict())


class PolicyVersionListView(WorkspaceAPIView):
    scope_map = {"GET": TOOLS_WRITE}

    @extend_schema(
        operation_id="policy_versions_list",
        parameters=[VersionListQuerySerializer],
        responses=VersionListSerializer,
    )
    def get(self, request):
        query = VersionListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        counter = query.validated_data.get("policy_version")
        if counter is not None:
            # From an audit entry to the policy it was decided under.
            found = policy_version_for(workspace=request.workspace, policy_version=counter)
            return Response({"results": [_version(found)] if found else []})
        versions = policy_version_list(workspace=request.workspace)[:MAX_VERSIONS_LISTED]
        return Response({"results": [_version(v) for v in versions]})


def _found(request, number: int):
    version = policy_version_get(workspace=request.workspace, number=number)
    if version is None:
        raise WardenError("not_found", "Not found.")
    return version


class PolicyVersionDetailView(WorkspaceAPIView):
    scope_map = {"GET": TOOLS_WRITE}

    @extend_schema(
        operation_id="policy_versions_get",
        parameters=[VersionDetailQuerySerializer],
        responses=VersionDetailSerializer,
    )
    def get(self, request, number: int):
        query = VersionDetailQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        version = _found(request, number)
        current = export_document(request.workspace)
        body = _version(version, detail=True, current=current)
        previous, following = policy_version_neighbours(version=version)
        body["previous"] = previous.number if previous else None
        body["next"] = following.number if following else None
        against = query.validated_data.get("against")
        if against is not None:
            other = _found(request, against)
            body["against"] = other.number
            body["diff_against"] = document_diff(other.document, version.document)
        return Response(body)


class PolicyRollbackView(WorkspaceAPIView):
    scope_map = {"POST": TOOLS_WRITE}

    @extend_schema(
        operation_id="policy_versions_rollback",
        request=RollbackSerializer,
        responses={200: ApplySerializer, 202: ApplySerializer},
    )
    def post(self, request, number: int):
        body = _valid(RollbackSerializer, request)
        _found(request, number)
        result = policy_rollback(
            workspace=request.workspace,
            number=number,
            actor=request.actor,
            reason=body.get("reason", ""),
            may_change_settings=request.principal.has_scope(WORKSPACE_ADMIN),
        )
        code = status.HTTP_202_ACCEPTED if result.outcome is not None else status.HTTP_200_OK
        return Response(result.as_dict(), status=code)
