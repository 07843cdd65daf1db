"""Bench-only URL configuration (bench/floor_settings.py): every production URL plus
POST /bench/floor, the durable-write floor a decision is measured against. It is never
in config.urls.

The floor does what a decision cannot avoid and nothing else: the same authentication,
permission and rate limit (WorkspaceAPIView, keys only, the JSON body parsed), then one
~1 KB row inserted and committed with synchronous_commit on (the server's default), and
a tiny JSON answer."""

import os

from django.db import connection, transaction
from django.urls import path
from rest_framework.response import Response

from common.api.views import KEY, WorkspaceAPIView
from config.urls import urlpatterns as production

# Made afresh by bench/decision.py in the bench's own database.
FLOOR_TABLE_SQL = (
    "DROP TABLE IF EXISTS bench_floor",
    "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, "
    "workspace_id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), "
    "body text NOT NULL)",
)


class FloorView(WorkspaceAPIView):
    principals = (KEY,)

    def post(self, request):
        tool = request.data.get("tool", "")
        body = tool + os.urandom(500).hex()  # ~1 KB, incompressible
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_floor (workspace_id, body) VALUES (%s, %s)",
                [request.workspace.pk, body],
            )
        return Response({"ok": True})


urlpatterns = [path("bench/floor", FloorView.as_view()), *production]
