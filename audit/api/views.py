"""Evidence reads: thin views over audit.selectors, cursor-paginated.

Every list costs the same number of queries whatever the page size: one for the
credential, one per page of rows (DRF cursor pagination fetches page_size + 1 rows by
keyset, no COUNT, no OFFSET scan), and related rows come through select_related.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from audit.api.serializers import (
    AuditEntrySerializer,
    ExceptionRecordSerializer,
    ExceptionResolveSerializer,
    VersionLogSerializer,
    page_of,
)
from audit.selectors import (
    audit_entries,
    exception_record_get,
    exception_records,
    version_logs,
)
from audit.services import exception_resolve
from common.api.views import USER, WorkspaceAPIView
from common.errors import WardenError
from keys.scopes import AUDIT_READ
from tenants.selectors import user_can


class SeqCursorPagination(CursorPagination):
    """Newest first by the chain's own sequence number: stable under appends."""

    ordering = "-seq"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class IdCursorPagination(SeqCursorPagination):
    ordering = "-id"


def _params(names) -> list[OpenApiParameter]:
    return [OpenApiParameter(name, OpenApiTypes.STR, required=False) for name in names]


class _EvidenceListView(WorkspaceAPIView):
    scope_map = {"GET": AUDIT_READ}
    pagination_class = IdCursorPagination
    serializer_class = None
    selector = None

    def get(self, request):
        queryset = type(self).selector(workspace=request.workspace, filters=request.query_params)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(self.serializer_class(page, many=True).data)


class AuditEntryListView(_EvidenceListView):
    """Audit entries, newest first. Filters: actor_prefix (key:/user:/system:), actor,
    action, tool, decision, request_id, since, until (ISO 8601); cursor, page_size."""

    pagination_class = SeqCursorPagination
    serializer_class = AuditEntrySerializer
    selector = staticmethod(audit_entries)

    @extend_schema(
        parameters=_params(
            ["actor_prefix", "actor", "action", "tool", "decision", "request_id", "since", "until"]
        ),
        responses=page_of(AuditEntrySerializer),
    )
    def get(self, request):
        return super().get(request)


class ExceptionRecordListView(_EvidenceListView):
    """Exception records, newest first. Filters: kind, severity, subject,
    resolved (true/false), since, until."""

    serializer_class = ExceptionRecordSerializer
    selector = staticmethod(exception_records)

    @extend_schema(
        parameters=_params(["kind", "severity", "subject", "resolved", "since", "until"]),
        responses=page_of(ExceptionRecordSerializer),
    )
    def get(self, request):
        return super().get(request)


class VersionLogListView(_EvidenceListView):
    """Version logs (before/after of every config change), newest first. Filters:
    target_type, target_id, actor, policy_version, since, until."""

    serializer_class = VersionLogSerializer
    selector = staticmethod(version_logs)

    @extend_schema(
        parameters=_params(
            ["target_type", "target_id", "actor", "policy_version", "since", "until"]
        ),
        responses=page_of(VersionLogSerializer),
    )
    def get(self, request):
        return super().get(request)


class ExceptionResolveView(WorkspaceAPIView):
    """Close an exception record with a reason (and the mitigation applied). Humans
    who can both read the evidence and decide requests (view_audit + approve_actions)."""

    principals = (USER,)
    scope_map = {"POST": AUDIT_READ}

    @extend_schema(request=ExceptionResolveSerializer, responses=ExceptionRecordSerializer)
    def post(self, request, pk):
        if not user_can(request.user, "approve_actions", request.workspace):
            raise WardenError(
                "forbidden_by_scope",
                "Resolving exceptions needs the approve_actions permission too.",
                {"required_permission": "approve_actions"},
            )
        record = exception_record_get(workspace=request.workspace, pk=pk)
        if record is None:
            raise WardenError("not_found", "Not found.")
        data = ExceptionResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = exception_resolve(
            record=record,
            actor=request.actor,
            reason=data.validated_data["reason"],
            mitigation=data.validated_data["mitigation"],
        )
        return Response(ExceptionRecordSerializer(record).data)
