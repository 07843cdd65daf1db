"""The durable-write floor of bench/decision.py: bench-only (production URLs never route
it) and held to the decision's own authentication, so the ratio compares like with like."""

from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from keys.services import key_revoke
from tests.approvals.conftest import SYSTEM

BENCH = str(Path(__file__).resolve().parent.parent / "bench")


def test_production_urls_do_not_route_the_floor(agent):
    _, client = agent
    assert client.post("/bench/floor", {}, format="json").status_code == 404


@pytest.fixture
def floor_urls(db, settings, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the floor's table is PostgreSQL DDL, like the bench it serves")
    monkeypatch.syspath_prepend(BENCH)
    import floor_urls

    settings.ROOT_URLCONF = "floor_urls"
    with connection.cursor() as cursor:
        for statement in floor_urls.FLOOR_TABLE_SQL:
            cursor.execute(statement)
    return floor_urls


def _rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_floor")
        return cursor.fetchone()[0]


def test_the_floor_writes_one_row_for_a_valid_key_and_nothing_otherwise(
    floor_urls, agent, api_error
):
    key, client = agent
    body = {"tool": "crm.lookup", "params": {"id": 1}}
    assert client.post("/bench/floor", body, format="json").status_code == 200
    assert _rows() == 1
    api_error(
        Client().post("/bench/floor", body, content_type="application/json"),
        401,
        "not_authenticated",
    )
    key_revoke(reason="test set-up", key=key, actor=SYSTEM)
    api_error(client.post("/bench/floor", body, format="json"), 401, "key_revoked")
    assert _rows() == 1
