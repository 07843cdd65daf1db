"""A client generated from the live schema with openapi-python-client runs the whole
agent flow with no raw-JSON workaround: if the schema lies (an undeclared envelope,
status, body or nullability), the generated code fails to parse or returns None."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from approvals.demo import load_demo_tools
from approvals.guard import operator_seeding
from tenants.models import Role
from tests.conftest import SYSTEM

PACKAGE = "warden_api_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")

pytestmark = pytest.mark.skipif(
    not GENERATOR.exists() and shutil.which("openapi-python-client") is None,
    reason="openapi-python-client is not installed",
)


def generate_client(base_url: str, workdir: Path):
    """Fetch the schema from the running server, generate, import the package."""
    schema = httpx.get(f"{base_url}/api/schema/", timeout=30)
    schema.raise_for_status()
    (workdir / "schema.yaml").write_bytes(schema.content)
    (workdir / "config.yaml").write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")
    command = str(GENERATOR) if GENERATOR.exists() else "openapi-python-client"
    done = subprocess.run(
        [
            command,
            "generate",
            "--path",
            str(workdir / "schema.yaml"),
            "--output-path",
            str(workdir / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(workdir / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(workdir))
    importlib.invalidate_caches()
    return importlib.import_module(PACKAGE)


@pytest.fixture
def generated(live_server, tmp_path):
    try:
        yield generate_client(live_server.url, tmp_path)
    finally:
        if str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
def setup(settings, make_workspace, make_key, make_member):
    # The live server speaks plain http: the cookies must not be Secure-only here.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    workspace = make_workspace(writes_enabled=True, mode="live")
    with operator_seeding():  # set-up, like an operator at a shell
        load_demo_tools(workspace=workspace, actor=SYSTEM)
    _key, plaintext = make_key(
        workspace, scopes=["actions:read", "actions:write", "actions:external", "audit:read"]
    )
    make_member(workspace, Role.APPROVER, email="approver@example.test")
    return workspace, plaintext


def test_the_whole_agent_flow_through_a_generated_client(live_server, generated, setup):
    workspace, plaintext = setup
    from warden_api_client import AuthenticatedClient, Client
    from warden_api_client.api.actions import actions_ask, actions_get, actions_report_result
    from warden_api_client.api.approvals import approvals_approve, approvals_list
    from warden_api_client.api.audit import audit_list
    from warden_api_client.api.session import session_create
    from warden_api_client.api.tools import tools_list
    from warden_api_client.api.whoami import whoami_get
    from warden_api_client.models import (
        ActionAllowed,
        ActionConfirmation,
        ActionCreateRequest,
        ActionCreateRequestParams,
        ActionResultRequest,
        ActionResultStatusEnum,
        CallableTool,
        Error,
        SessionLoginRequest,
        VerdictRequest,
    )

    agent = AuthenticatedClient(base_url=live_server.url, token=plaintext)

    me = whoami_get.sync(client=agent)
    assert me.principal == "key" and me.workspace.slug == workspace.slug
    assert "audit:read" in me.scopes and me.key.expires_at is None

    tools = tools_list.sync(client=agent).results
    assert tools and all(isinstance(t, CallableTool) for t in tools)
    assert {"crm.lookup", "email.send"} <= {t.name for t in tools}

    lookup = ActionCreateRequestParams.from_dict({"contact_id": "c_42"})
    allowed = actions_ask.sync(
        client=agent, body=ActionCreateRequest(tool="crm.lookup", params=lookup)
    )
    assert isinstance(allowed, ActionAllowed) and allowed.dry_run is False

    refused = actions_ask.sync(client=agent, body=ActionCreateRequest(tool="db.drop"))
    assert isinstance(refused, Error) and refused.error.code == "tool_not_allowed"

    email = {"to": "ann@example.com", "subject": "Your invoice"}
    asked = actions_ask.sync_detailed(
        client=agent,
        body=ActionCreateRequest(
            tool="email.send", params=ActionCreateRequestParams.from_dict(email)
        ),
    )
    assert asked.status_code == 202
    gated = asked.parsed
    assert isinstance(gated, ActionConfirmation) and gated.confirmation_token.startswith("ct_")

    confirmed_call = ActionCreateRequest(
        tool="email.send",
        params=ActionCreateRequestParams.from_dict(email),
        confirmed=True,
        confirmation_token=gated.confirmation_token,
    )
    pending = actions_ask.sync(client=agent, body=confirmed_call)
    assert isinstance(pending, Error) and pending.error.code == "confirmation_pending"
    status = actions_get.sync(client=agent, id=gated.id)
    assert status.status == "pending" and status.confirmation.decided_at is None

    # A human logs in through the documented API login and approves.
    login = Client(base_url=live_server.url)
    session = session_create.sync(
        client=login,
        body=SessionLoginRequest(email="approver@example.test", password="pw-for-tests-1"),
    )
    assert [w.slug for w in session.workspaces] == [workspace.slug]
    human = Client(
        base_url=live_server.url,
        cookies=dict(login.get_httpx_client().cookies),
        headers={"X-CSRFToken": session.csrf_token, "X-Warden-Workspace": workspace.slug},
    )
    queue = approvals_list.sync(client=human).results
    mine = next(a for a in queue if a.action_request == gated.id)
    decided = approvals_approve.sync(client=human, id=mine.id, body=VerdictRequest(reason="ok"))
    assert decided.status == "approved" and decided.decided_at is not None

    done = actions_ask.sync(client=agent, body=confirmed_call)
    assert isinstance(done, ActionAllowed) and done.id == gated.id
    again = actions_ask.sync(client=agent, body=confirmed_call)
    assert isinstance(again, Error) and again.error.code == "confirmation_used"

    reported = actions_report_result.sync(
        client=agent,
        id=gated.id,
        body=ActionResultRequest(status=ActionResultStatusEnum.SUCCEEDED, output={"sent": True}),
    )
    assert reported.status == "executed" and reported.result_status == "succeeded"

    first = audit_list.sync(client=agent, page_size=2)
    assert len(first.results) == 2 and first.next_ is not None
    cursor = parse_qs(urlparse(first.next_).query)["cursor"][0]
    second = audit_list.sync(client=agent, page_size=2, cursor=cursor)
    assert second.results and second.previous is not None
    assert second.results[0].seq == first.results[-1].seq - 1
    assert all(isinstance(e.action, str) for e in first.results + second.results)  # open set
