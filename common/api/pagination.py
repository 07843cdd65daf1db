from rest_framework.pagination import CursorPagination

from common.errors import WardenError


class StrictPageSizeMixin:
    """`page_size` is what the schema says (an integer from 1 to max_page_size) or a 400:
    DRF's own paginator silently clamps or ignores anything else, so a client asking for
    more rows than a page holds would never learn it got fewer."""

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise WardenError(
                "validation_error",
                f"page_size must be an integer from 1 to {self.max_page_size}.",
                {"page_size": [f"1-{self.max_page_size}"]},
            )
        return size


class NewestFirstCursorPagination(StrictPageSizeMixin, CursorPagination):
    """Stable under inserts, constant cost per page (no OFFSET scans)."""

    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
