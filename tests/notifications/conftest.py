"""Fixtures for background work: a local signed-webhook receiver, endpoints pointed
at it, and a pending confirmation created through the API."""

import pytest

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ConfirmationRequest
from common.actor import Actor
from notifications.services import endpoint_create
from tests.notifications.receiver import Receiver

SYSTEM = Actor.system("tests")


@pytest.fixture
def allow_http(settings):
    settings.WARDEN_WEBHOOK_ALLOW_HTTP = True


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def make_endpoint(receiver, allow_http, allow_hosts):
    def make(workspace, events=("confirmation.requested",), url=None, name="hooks"):
        allow_hosts(workspace)
        with operator_seeding():
            issued = endpoint_create(
                reason="test set-up",
                workspace=workspace,
                name=name,
                url=url or receiver.url,
                events=list(events),
                actor=SYSTEM,
            )
        receiver.secret = issued.secret
        return issued.endpoint

    return make


@pytest.fixture
def gated_tool(live_workspace):
    with operator_seeding():
        return tool_create(
            reason="test set-up",
            workspace=live_workspace,
            actor=SYSTEM,
            name="crm.update_stage",
            level="write",
            confirmation="always",
        )


@pytest.fixture
def ask_pending(agent, gated_tool, django_capture_on_commit_callbacks):
    """POST /api/v1/actions for a gated tool, running the after-commit hooks (the
    confirmation_requested signal) as a real commit would. Returns the confirmation."""

    def ask(params=None, reason="", execute=True):
        _, client = agent
        body = {"tool": gated_tool.name, "params": params or {"deal": 7}, "reason": reason}
        with django_capture_on_commit_callbacks(execute=execute):
            response = client.post("/api/v1/actions", body, format="json")
        assert response.status_code == 202, response.json()
        return ConfirmationRequest.objects.get(action_request_id=response.json()["id"])

    return ask


@pytest.fixture
def eager_retries():
    """Let eager Celery run a task's retries at once (as a worker would after the
    backoff) instead of raising Retry to the caller."""
    from config.celery import app

    previous = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = previous
