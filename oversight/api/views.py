from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from common.api.views import WorkspaceAPIView
from common.scopes import AUDIT_READ
from oversight.api.serializers import PostureSerializer
from oversight.posture import posture_build


class PostureView(WorkspaceAPIView):
    """The workspace's risk posture: sensitivity, autonomy, decision, score, mitigations."""

    scope_map = {"GET": AUDIT_READ}

    @extend_schema(
        operation_id="posture_get",
        description="Keys need audit:read; humans the workspace's view_audit (else 403 "
        "forbidden_by_scope). Computed from the workspace's settings, keys, tool catalog "
        "and the last 30 days of decisions; the score formula is in the README.",
        responses=PostureSerializer,
    )
    def get(self, request):
        return Response(posture_build(workspace=request.workspace))
