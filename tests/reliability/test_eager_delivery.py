"""Without a broker (the embedded default), a notification leaves after the request:
a webhook receiver that never answers does not hold the agent's answer, nor anyone
else's (the SQLite write lock is not held across the send), and the delivery still
happens; one that failed is retried by the sweeper the background lane runs."""

import sqlite3
import threading
import time

import pytest

from tests.notifications.receiver import Receiver

pytestmark = pytest.mark.slow

WEBHOOK_TIMEOUT = 6


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


def deliveries(database) -> list[tuple[str, int]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return list(db.execute("SELECT status, attempts FROM notifications_webhookdelivery"))


def delivery_status(database) -> list[str]:
    return [status for status, _ in deliveries(database)]


def timed(call):
    started = time.monotonic()
    reply = call()
    return reply, time.monotonic() - started


def test_a_hanging_webhook_receiver_delays_no_answer_and_is_still_delivered(start_server, receiver):
    server = start_server(
        "1",
        receiver.url,
        WARDEN_WEBHOOK_ALLOW_HTTP="1",
        WARDEN_WEBHOOK_TIMEOUT_SECONDS=str(WEBHOOK_TIMEOUT),
    )
    receiver.secret = server.seed["webhook_secret"]
    receiver.hold_next(threading.Event())  # the receiver does not answer until released

    gated = {"tool": "crm.update_stage", "params": {"deal": 99}}
    asked, took = timed(lambda: server.as_agent("POST", "/api/v1/actions", gated))
    assert asked.status == 202, asked.body
    assert took < 1.5, f"202 took {took:.2f}s"

    assert receiver.arrived.wait(timeout=10), "the delivery was never attempted"
    # The receiver is holding the delivery open: other writes go through meanwhile.
    read = {"tool": "crm.lookup", "params": {"id": 1}}
    allowed, took = timed(lambda: server.as_agent("POST", "/api/v1/actions", read))
    assert allowed.status == 200, allowed.body
    assert took < 1.5, f"a decision during the send took {took:.2f}s"

    receiver.release()
    deadline = time.monotonic() + WEBHOOK_TIMEOUT + 10
    while delivery_status(server.database) != ["delivered"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert delivery_status(server.database) == ["delivered"]
    assert receiver.received[0].valid
    assert receiver.processed == [receiver.received[0].headers["X-Warden-Delivery"]]


def test_without_a_broker_a_failed_delivery_is_retried_by_the_sweeper(start_server, receiver):
    server = start_server(
        "1",
        receiver.url,
        WARDEN_WEBHOOK_ALLOW_HTTP="1",
        WARDEN_EAGER_SWEEP_SECONDS="1",
        WARDEN_OUTBOX_SWEEP_AFTER_SECONDS="1",
    )
    receiver.secret = server.seed["webhook_secret"]
    receiver.statuses = [503]  # the first attempt fails, the next succeeds

    gated = {"tool": "crm.update_stage", "params": {"deal": 7}}
    assert server.as_agent("POST", "/api/v1/actions", gated).status == 202
    deadline = time.monotonic() + 30
    while deliveries(server.database) != [("delivered", 2)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert deliveries(server.database) == [("delivered", 2)]
    assert len(receiver.received) == 2 and len(receiver.processed) == 1
