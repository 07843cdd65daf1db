from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from audit.api.serializers import PrivacySummarySerializer
from common.api.views import WorkspaceAPIView, require_scope
from common.errors import WardenError
from common.scopes import AUDIT_READ
from keys.models import MachineKey
from oversight.privacy import privacy_summary_download
from tenants.selectors import user_can

DOWNLOAD_PERMISSION = "download_privacy_summary"


def require_privacy_summary_access(request, workspace) -> None:
    """Keys need audit:read; humans need the workspace's download_privacy_summary."""
    if isinstance(request.auth, MachineKey):
        require_scope(request, workspace, AUDIT_READ)
        return
    if not user_can(request.user, DOWNLOAD_PERMISSION, workspace):
        raise WardenError(
            "forbidden_by_scope",
            "Your role in this workspace does not allow downloading the privacy summary.",
            {"required_permission": DOWNLOAD_PERMISSION},
        )


class PrivacySummaryView(WorkspaceAPIView):
    """The workspace's privacy summary. Every call is a download and is audited."""

    @extend_schema(
        operation_id="privacy_summary_get",
        description="Keys need audit:read; humans the workspace's download_privacy_summary "
        "(else 403 forbidden_by_scope). Every call is audited as a download.",
        responses=PrivacySummarySerializer,
    )
    def get(self, request):
        require_privacy_summary_access(request, request.workspace)
        summary = privacy_summary_download(
            workspace=request.workspace, actor=request.actor, fmt="json"
        )
        return Response(summary)
