"""Erasure for compliance staff: `POST /api/v1/personal-data/erase` (approvals.erasure).
Human sessions holding the workspace's compliance permission only; never a key."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from approvals.erasure import personal_data_erase
from common.api.serializers import StrictSerializer
from common.api.views import USER, WorkspaceAPIView

ERASE_PERMISSION = "download_privacy_summary"


class ErasureRequestSerializer(StrictSerializer):
    """Name the action requests, or the data subject (the value of the parameter the
    tool declared as `subject_param`; it is matched by keyed digest, never stored)."""

    action_ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list, max_length=1000
    )
    subject = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default="", trim_whitespace=False
    )
    reason = serializers.CharField(max_length=2000)


class ErasureResultSerializer(serializers.Serializer):
    by = serializers.ChoiceField(choices=["request", "subject"])
    action_requests = serializers.ListField(child=serializers.UUIDField())
    copies = serializers.DictField(child=serializers.IntegerField())


class PersonalDataEraseView(WorkspaceAPIView):
    """Destroy the data keys of the named requests (their params, summary and outputs
    become unreadable; the audit chain, which holds digests only, still verifies)."""

    principals = (USER,)
    # already waiting for a human (409)
    schema_error_statuses = {"POST": (409,)}

    @extend_schema(
        operation_id="personal_data_erase",
        request=ErasureRequestSerializer,
        responses=ErasureResultSerializer,
        description="Human sessions with the workspace's download_privacy_summary "
        "(compliance) permission. Audited with the actor and the reason, never the value.",
    )
    def post(self, request):
        request.principal.require_permission(
            ERASE_PERMISSION, "Your role in this workspace does not allow erasing personal data."
        )
        data = ErasureRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = personal_data_erase(
            workspace=request.workspace,
            actor=request.actor,
            reason=values["reason"],
            action_ids=values["action_ids"],
            subject=values["subject"],
        )
        return Response(
            {"by": result.by, "action_requests": result.action_requests, "copies": result.copies}
        )
