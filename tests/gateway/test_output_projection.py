"""Output allowlists: a tool's output projection decides what of an executed result the
agent reads. Against a real upstream (official SDK, FastMCP over Streamable HTTP), on
REST execute and MCP tools/call alike; the withheld values reach neither the agent nor
the evidence (keyed digests only); removing the projection is filed for a second human."""

from __future__ import annotations

import json

import pytest

mcp = pytest.importorskip("mcp")

from django.test import Client  # noqa: E402
from mcp.server.fastmcp import FastMCP  # noqa: E402

from approvals.models import ActionRequest, Tool  # noqa: E402
from audit.models import AuditEntry  # noqa: E402
from gateway.models import Execution  # noqa: E402
from gateway.services import connector_sync  # noqa: E402
from tenants.models import Role  # noqa: E402
from tests.gateway.conftest import SYSTEM, seeded_tool_update  # noqa: E402
from tests.gateway.mcp_upstream import ServedMCPUpstream  # noqa: E402
from tests.gateway.test_mcp_integration import agent  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EMAIL = "ada.lovelace@example.com"
CARD = "4111111111111111"
PROJECTION = ["$.customer_id", "$.orders[*].id"]


class Upstream(ServedMCPUpstream):
    """FastMCP answering a customer record with personal data in it."""

    def __init__(self) -> None:
        server = FastMCP("crm-upstream", host="127.0.0.1")

        @server.tool(description="Look a customer up by id.")
        def lookup(customer_id: int) -> dict[str, object]:
            return {
                "customer_id": customer_id,
                "email": EMAIL,
                "orders": [{"id": 1, "card": CARD}, {"id": 2, "card": CARD}],
            }

        self._serve(server)


@pytest.fixture
def real():
    running = Upstream()
    yield running
    running.stop()


@pytest.fixture
def projected(real, gw_workspace, make_connector):
    """crm.lookup imported from the real upstream, enabled, with a projection."""
    connector = make_connector(gw_workspace, url=real.url)
    connector_sync(connector=connector, actor=SYSTEM)
    tool = Tool.objects.get(workspace=gw_workspace, name="crm.lookup")
    seeded_tool_update(
        tool=tool,
        actor=SYSTEM,
        changes={
            "enabled": True,
            "level": "read",
            "confirmation": "never",
            "output_projection": PROJECTION,
        },
        reason="test set-up",
    )
    return Tool.objects.get(pk=tool.pk)


def _no_withheld_value_stored(workspace) -> None:
    stored = json.dumps(
        [
            *AuditEntry.objects.filter(workspace=workspace).values_list("input", flat=True),
            *Execution.objects.filter(workspace=workspace).values_list("output", flat=True),
        ]
    )
    assert EMAIL not in stored and CARD not in stored


def test_rest_execute_returns_only_the_projected_fields(
    projected, gw_workspace, make_key, key_client
):
    _, plaintext = make_key(gw_workspace, scopes=["actions:read"], tools=["crm.*"])
    response = key_client(plaintext).post(
        "/api/v1/actions",
        {"tool": "crm.lookup", "params": {"customer_id": 7}, "execute": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    kept = {"customer_id": 7, "orders": [{"id": 1}, {"id": 2}]}
    assert body["result"]["structuredContent"] == kept
    assert [json.loads(block["text"]) for block in body["result"]["content"]] == [kept]
    assert EMAIL not in response.content.decode() and CARD not in response.content.decode()
    withheld = body["execution"]["withheld"]
    paths = sorted(entry["path"] for entry in withheld["entries"])
    assert paths == [
        "structuredContent$.email",
        "structuredContent$.orders[0].card",
        "structuredContent$.orders[1].card",
    ]
    assert withheld["count"] == 3
    assert all(e["digest"].startswith("hmac-sha256:") for e in withheld["entries"])

    # The execution's audit entry names what was withheld, by digest only.
    entry = AuditEntry.objects.get(workspace=gw_workspace, action="execution.recorded")
    assert entry.input["withheld"] == withheld
    _no_withheld_value_stored(gw_workspace)


def test_mcp_tools_call_returns_only_the_projected_fields(
    live_server, projected, gw_workspace, make_key
):
    _, plaintext = make_key(gw_workspace, scopes=["actions:read"], tools=["crm.*"])

    async def steps(session):
        listed = await session.list_tools()
        called = await session.call_tool("crm-lookup", {"customer_id": 7})
        return listed, called

    _, (listed, called) = agent(live_server.url + "/mcp", plaintext, steps)
    # The upstream's output schema is not advertised: it may require withheld fields.
    assert [t.outputSchema for t in listed.tools] == [None]
    kept = {"customer_id": 7, "orders": [{"id": 1}, {"id": 2}]}
    assert called.isError is False
    assert called.structuredContent == kept
    assert [json.loads(block.text) for block in called.content] == [kept]
    assert called.meta["warden/withheld"] == {
        "count": 3,
        "paths": [
            "structuredContent$.email",
            "structuredContent$.orders[0].card",
            "structuredContent$.orders[1].card",
        ],
    }
    entry = AuditEntry.objects.get(workspace=gw_workspace, action="execution.recorded")
    assert entry.input["withheld"]["count"] == 3
    _no_withheld_value_stored(gw_workspace)


def test_the_execution_view_shows_what_was_withheld(projected, gw_workspace, make_key, key_client):
    _, plaintext = make_key(gw_workspace, scopes=["actions:read"], tools=["crm.*"])
    key_client(plaintext).post(
        "/api/v1/actions",
        {"tool": "crm.lookup", "params": {"customer_id": 7}, "execute": True},
        format="json",
    )
    execution = Execution.objects.get(workspace=gw_workspace)
    owner = Client()
    owner.force_login(gw_workspace.memberships.get(role=Role.OWNER).user)
    page = owner.get(f"/admin/gateway/execution/{execution.pk}/change/").content.decode()
    assert "3 value(s) withheld" in page
    assert "structuredContent$.orders[1].card" in page
    assert execution.withheld["entries"][0]["digest"] in page
    assert EMAIL not in page and CARD not in page


def test_removing_the_projection_is_filed_for_a_second_human(
    projected, gw_workspace, gw_admin, user_client, make_member, approve
):
    admin = user_client(gw_admin, gw_workspace)
    removed = admin.patch(
        f"/api/v1/tools/{projected.pk}",
        {"output_projection": None, "reason": "the agent needs e-mails now"},
        format="json",
    )
    assert removed.status_code == 202, removed.content
    assert Tool.objects.get(pk=projected.pk).output_projection == PROJECTION
    action = ActionRequest.objects.get(pk=removed.json()["id"])
    assert "output_projection" in action.params["changes"]
    second = make_member(gw_workspace, Role.ADMIN)
    assert approve(second, gw_workspace, action.confirmation.pk).status_code == 200
    assert Tool.objects.get(pk=projected.pk).output_projection is None


def test_widening_is_filed_and_narrowing_applies_at_once(
    projected, gw_workspace, gw_admin, user_client
):
    admin = user_client(gw_admin, gw_workspace)
    url = f"/api/v1/tools/{projected.pk}"
    widened = admin.patch(url, {"output_projection": ["$"], "reason": "everything"}, format="json")
    assert widened.status_code == 202
    narrowed = admin.patch(
        url, {"output_projection": ["$.customer_id"], "reason": "ids only"}, format="json"
    )
    assert narrowed.status_code == 200, narrowed.content
    assert narrowed.json()["output_projection"] == ["$.customer_id"]


def test_an_invalid_projection_is_refused_with_a_clear_error(
    projected, gw_workspace, gw_admin, user_client, api_error
):
    admin = user_client(gw_admin, gw_workspace)
    for bad in (["items[*].id"], ["$.items[0]"], "$.id", ["$.a", "$.a"]):
        body = api_error(
            admin.patch(
                f"/api/v1/tools/{projected.pk}",
                {"output_projection": bad, "reason": "try"},
                format="json",
            ),
            400,
            "validation_error",
        )
        assert "output_projection" in body["error"]["detail"], bad


def test_another_workspace_can_neither_see_nor_change_the_projection(
    projected, make_workspace, make_member, user_client, api_error
):
    other = make_workspace()
    outsider = user_client(make_member(other, Role.ADMIN), other)
    url = f"/api/v1/tools/{projected.pk}"
    api_error(outsider.get(url), 404, "not_found")
    api_error(
        outsider.patch(url, {"output_projection": None, "reason": "mine"}, format="json"),
        404,
        "not_found",
    )
    assert Tool.objects.get(pk=projected.pk).output_projection == PROJECTION
