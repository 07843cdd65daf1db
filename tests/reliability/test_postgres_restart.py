"""PostgreSQL restarts under load: while it is down, clients get 503 with Retry-After,
never a 500; the service is back within seconds of the database; a client that retries
with its idempotency key gets exactly one decision per request, none lost, none twice.

Runs against a PostgreSQL cluster of its own (initdb on a free port) behind gunicorn
with persistent connections, so restarting it disturbs nobody else."""

import threading
import time
from collections import Counter, defaultdict

import psycopg
import pytest

from tests.reliability.own_postgres import OwnPostgres
from tests.reliability.server import GUNICORN, WardenServer, migrate

pytestmark = pytest.mark.slow

CLIENTS = 4
OUTAGE_SECONDS = 3


@pytest.fixture
def own_postgres():
    cluster = OwnPostgres()
    if not cluster.available:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    cluster.create()
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE warden")
    yield cluster
    cluster.destroy()


def test_a_postgres_restart_under_load_answers_503_never_500_and_loses_nothing(
    own_postgres, tmp_path
):
    url = own_postgres.url()
    migrate(url)
    server = WardenServer(None, tmp_path, database_url=url, serve=GUNICORN, CONN_MAX_AGE="60")
    server.start("1")
    answers: list[tuple[float, str, int, str]] = []  # (time, idempotency key, status, id)
    stop = threading.Event()

    def client(n: int) -> None:
        for i in range(10_000):
            if stop.is_set():
                return
            body = {"tool": "crm.lookup", "params": {"n": n, "i": i}, "idempotency_key": f"{n}-{i}"}
            while True:  # a 503 is retried with the same idempotency key
                reply = server.as_agent("POST", "/api/v1/actions", body)
                decision_id = (reply.body or {}).get("id", "")
                answers.append(
                    (time.monotonic(), body["idempotency_key"], reply.status, decision_id)
                )
                if reply.status != 503:
                    break
                assert int(reply.headers["Retry-After"]) >= 1
                time.sleep(0.1)  # a real client waits Retry-After; the test is impatient

    def every_client_answered_since(since: float) -> bool:
        answered = {
            key.split("-")[0] for t, key, status, _ in list(answers) if status == 200 and t > since
        }
        return len(answered) == CLIENTS

    def wait_until(predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: every_client_answered_since(0), timeout=30)  # under load
        own_postgres.stop()
        time.sleep(OUTAGE_SECONDS)
        own_postgres.start()
        back_at = time.monotonic()
        wait_until(lambda: every_client_answered_since(back_at), timeout=10)  # all back
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        server.stop()

    statuses = Counter(status for _, _, status, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0, "the outage was not observed"
    first_200_after = min(t for t, _, status, _ in answers if status == 200 and t > back_at)
    assert first_200_after - back_at < 5, "not back within seconds"

    answered = defaultdict(set)
    for _, key, status, decision_id in answers:
        if status == 200:
            answered[key].add(decision_id)
    assert all(len(ids) == 1 for ids in answered.values())  # a replay, never a second one
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, id::text FROM approvals_actionrequest"
            " WHERE idempotency_key <> ''"
        ).fetchall()
    stored = defaultdict(set)
    for key, decision_id in rows:
        stored[key].add(decision_id.replace("-", ""))
    assert {k: {i.replace("-", "") for i in ids} for k, ids in answered.items()} == stored
