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
    AttachmentCreateSerializer,
    AttachmentListSerializer,
    AttachmentSerializer,
    AuditEntrySerializer,
    ExceptionRecordSerializer,
    ExceptionResolveSerializer,
    VersionLogSerializer,
)
from audit.attachments import attachment_add
from audit.models import AuditAction, EvidenceAttachment, ExceptionRecord
from audit.selectors import (
    attachments_of,
    audit_entries,
    exception_record_get,
    exception_records,
    version_log_get,
    version_logs,
)
from audit.services import exception_resolve
from common.api.pagination import StrictPageSizeMixin
from common.api.schema import page_of
from common.api.views import USER, WorkspaceAPIView
from common.errors import WardenError
from common.scopes import AUDIT_READ


class SeqCursorPagination(StrictPageSizeMixin, CursorPagination):
    """Newest first by the chain's own sequence number: stable under appends."""

    ordering = "-seq"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class IdCursorPagination(SeqCursorPagination):
    ordering = "-id"


def _text(name: str, description: str, **kwargs) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, description=description, **kwargs)


# What parse_when accepts, as the schema says it: an ISO 8601 timestamp or date whose
# year keeps it within [1900, 9999) in UTC whatever its offset, or nothing (a blank
# filter is no filter).
_WHEN_YEAR = "^(190[1-9]|19[1-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-7])-"
WHEN_SCHEMA = {
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": _WHEN_YEAR},
        {"type": "string", "format": "date", "pattern": _WHEN_YEAR},
        {"type": "string", "maxLength": 0},
    ]
}


def _params(*extra: OpenApiParameter) -> list[OpenApiParameter]:
    """A list's filters plus the time range and the cursor pagination parameters."""
    return [
        *extra,
        OpenApiParameter("since", WHEN_SCHEMA, description="ISO 8601; created_at >= since."),
        OpenApiParameter("until", WHEN_SCHEMA, description="ISO 8601; created_at < until."),
        _text("cursor", "Opaque; taken from the `next` or `previous` link of a page."),
        OpenApiParameter(
            "page_size",
            {"type": "integer", "minimum": 1, "maximum": SeqCursorPagination.max_page_size},
            description=f"Rows per page (default {SeqCursorPagination.page_size}).",
        ),
    ]


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
        operation_id="audit_list",
        parameters=_params(
            _text("actor_prefix", "The kind of actor.", enum=["key:", "user:", "system:"]),
            _text("actor", "Exact actor label, e.g. key:wdn_ab12cd34 or user:ann@example.com."),
            _text(
                "action",
                "Exact action. An open set; known values: " + ", ".join(AuditAction.values),
            ),
            _text("tool", "Exact tool name."),
            _text("decision", "Exact decision, e.g. allowed, denied, requires_confirmation."),
            _text("request_id", "The X-Request-Id of the request that wrote the entry."),
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
        operation_id="audit_exceptions_list",
        parameters=_params(
            _text("kind", "The kind of exception.", enum=ExceptionRecord.Kind.values),
            _text("severity", "The severity.", enum=ExceptionRecord.Severity.values),
            _text("subject", "Exact subject (an actor label or an object)."),
            OpenApiParameter(
                "resolved", OpenApiTypes.BOOL, description="Only resolved, or unresolved, rows."
            ),
        ),
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
        operation_id="audit_versions_list",
        parameters=_params(
            _text("target_type", "e.g. workspace, membership, machine_key, tool (open set)."),
            _text("target_id", "The changed object's id."),
            _text("actor", "Exact actor label."),
            OpenApiParameter(
                "policy_version",
                {"type": "integer", "minimum": 0, "maximum": 2147483647},
                description="The workspace policy version the change produced.",
            ),
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
    schema_error_statuses = {"POST": (409,)}  # conflict: already resolved

    @extend_schema(
        operation_id="audit_exceptions_resolve",
        request=ExceptionResolveSerializer,
        responses=ExceptionRecordSerializer,
    )
    def post(self, request, pk):
        request.principal.require_permission(
            "approve_actions", "Resolving exceptions needs the approve_actions permission too."
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


class _AttachmentsView(WorkspaceAPIView):
    """Attachment links (URL + SHA-256) of one evidence object. Humans with view_audit
    read and add them; another workspace's object answers 404 like a missing one."""

    principals = (USER,)
    scope_map = {"GET": AUDIT_READ, "POST": AUDIT_READ}
    target_type = ""

    def target(self, request, pk):
        raise NotImplementedError

    def _target_or_404(self, request, pk):
        target = self.target(request, pk)
        if target is None:
            raise WardenError("not_found", "Not found.")
        return target

    def get(self, request, pk):
        target = self._target_or_404(request, pk)
        rows = attachments_of(
            workspace=request.workspace, target_type=self.target_type, target_id=target.pk
        )
        return Response({"results": AttachmentSerializer(rows, many=True).data})

    def post(self, request, pk):
        target = self._target_or_404(request, pk)
        data = AttachmentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attachment = attachment_add(
            workspace=request.workspace, target=target, actor=request.actor, **data.validated_data
        )
        return Response(AttachmentSerializer(attachment).data, status=201)


class ExceptionAttachmentsView(_AttachmentsView):
    target_type = EvidenceAttachment.Target.EXCEPTION_RECORD

    def target(self, request, pk):
        return exception_record_get(workspace=request.workspace, pk=pk)

    @extend_schema(
        operation_id="audit_exception_attachments_list", responses=AttachmentListSerializer
    )
    def get(self, request, pk):
        return super().get(request, pk)

    @extend_schema(
        operation_id="audit_exception_attachments_add",
        request=AttachmentCreateSerializer,
        responses={201: AttachmentSerializer},
    )
    def post(self, request, pk):
        return super().post(request, pk)


class VersionLogAttachmentsView(_AttachmentsView):
    target_type = EvidenceAttachment.Target.VERSION_LOG

    def target(self, request, pk):
        return version_log_get(workspace=request.workspace, pk=pk)

    @extend_schema(
        operation_id="audit_version_attachments_list", responses=AttachmentListSerializer
    )
    def get(self, request, pk):
        return super().get(request, pk)

    @extend_schema(
        operation_id="audit_version_attachments_add",
        request=AttachmentCreateSerializer,
        responses={201: AttachmentSerializer},
    )
    def post(self, request, pk):
        return super().post(request, pk)
