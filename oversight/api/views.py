from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from approvals.policy_impact import simulate
from approvals.shadow import shadow_report
from common.api.views import WorkspaceAPIView
from common.scopes import AUDIT_READ
from oversight.api.serializers import (
    ImpactReportSerializer,
    PostureSerializer,
    ShadowReportQuerySerializer,
    ShadowReportSerializer,
    SimulateRequestSerializer,
)
from oversight.posture import posture_build

# The newest recorded requests a simulation replays at most (measured: 100,000 in a
# few seconds, bench/policy_replay.py); beyond it the report says `capped`.
SIMULATE_MAX_REQUESTS = 250_000


class PostureView(WorkspaceAPIView):
    """The workspace's risk posture: sensitivity, autonomy, decision, score, mitigations."""

    scope_map = {"GET": AUDIT_READ}

    @extend_schema(
        operation_id="posture_get",
        description="Keys need audit:read; humans the workspace's view_audit (else 403 "
        "forbidden_by_scope). Computed from the workspace's settings, keys, tool catalog "
        "and the last 30 days of decisions; the score formula is in the documentation.",
        responses=PostureSerializer,
    )
    def get(self, request):
        return Response(posture_build(workspace=request.workspace))


class PolicySimulateView(WorkspaceAPIView):
    """The impact of a proposed policy on the workspace's recorded requests."""

    scope_map = {"POST": AUDIT_READ}

    @extend_schema(
        operation_id="policy_simulate",
        description="Replays the workspace's recorded agent requests of the last `days` "
        "(default 30) under the proposed catalog and settings and compares each with the "
        "decision it got. Changes nothing. Keys need audit:read; humans the workspace's "
        "view_audit (else 403 forbidden_by_scope). An invalid proposal answers 400 "
        "validation_error naming its path (e.g. tools[2].condition).",
        request=SimulateRequestSerializer,
        responses=ImpactReportSerializer,
    )
    def post(self, request):
        body = SimulateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        report = simulate(
            request.workspace,
            data.get("tools"),
            data.get("settings"),
            data["days"],
            limit=SIMULATE_MAX_REQUESTS,
        )
        return Response(report.as_dict())


class ShadowReportView(WorkspaceAPIView):
    """Where shadow rules disagreed with the live decisions."""

    scope_map = {"GET": AUDIT_READ}

    @extend_schema(
        operation_id="policy_shadow_report",
        description="Per tool with a shadow rule: requests shadowed in the last `days` "
        "(default 30), how many the shadow rule would have decided differently, how, and "
        "examples. Keys need audit:read; humans the workspace's view_audit.",
        parameters=[ShadowReportQuerySerializer],
        responses=ShadowReportSerializer,
    )
    def get(self, request):
        query = ShadowReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(
            shadow_report(workspace=request.workspace, days=query.validated_data["days"])
        )
