from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from common.api.views import WorkspaceAPIView
from common.principal import Principal
from common.scopes import AUDIT_READ
from oversight.api.privacy_serializers import PrivacySummarySerializer
from oversight.privacy import privacy_summary_download

DOWNLOAD_PERMISSION = "download_privacy_summary"


def require_privacy_summary_access(principal: Principal) -> None:
    """Keys need audit:read; humans need the workspace's download_privacy_summary."""
    if principal.is_key:
        principal.require_scope(AUDIT_READ)
        return
    principal.require_permission(
        DOWNLOAD_PERMISSION,
        "Your role in this workspace does not allow downloading the privacy summary.",
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
        require_privacy_summary_access(request.principal)
        summary = privacy_summary_download(
            workspace=request.workspace, actor=request.actor, fmt="json"
        )
        return Response(summary)
