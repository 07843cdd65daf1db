import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.catalog import tool_create
from approvals.guard import operator_seeding
from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest
from audit.models import AuditAction, AuditEntry
from tenants.models import Role
from tenants.services import workspace_update
from tests.conftest import SYSTEM

QUEUE = "/admin/approvals/confirmationrequest/"
BULK = QUEUE + "bulk-deny/"


def review_url(confirmation):
    return f"{QUEUE}{confirmation.pk}/"


def decide_url(confirmation):
    return f"{QUEUE}{confirmation.pk}/decide/"


def rows(response):
    return [row["confirmation"].pk for row in response.context["rows"]]


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def assert_out_of_reach(client, confirmation, status):
    """Its review page, its decision and a bulk deny naming it all answer `status`, and
    it is still pending."""
    assert client.get(review_url(confirmation)).status_code == status
    decided = client.post(decide_url(confirmation), {"verdict": "approve", "reason": "x"})
    assert decided.status_code == status
    assert client.post(BULK, {"ids": [confirmation.pk], "reason": "x"}).status_code == status
    confirmation.refresh_from_db()
    assert confirmation.status == "pending"


@pytest.fixture
def agent(workspace, make_key, make_member):
    """An agent key owned by a plain member, so every approver role may decide."""
    owner = make_member(workspace, Role.MEMBER)
    key, plaintext = make_key(
        workspace, scopes=["actions:read", "actions:write", "actions:external"], owner=owner
    )
    return key, plaintext


# -- who sees the queue ------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.OWNER, 200), (Role.ADMIN, 200), (Role.APPROVER, 200), (Role.AUDITOR, 403)],
)
def test_queue_access_by_role(
    workspace, agent, make_pending, role_users, admin_client_for, role, status
):
    make_pending(workspace, agent[0], count=2)
    response = admin_client_for(role_users[role]).get(QUEUE)
    assert response.status_code == status
    if status == 200:
        assert len(rows(response)) == 2


def test_member_has_no_admin_at_all(workspace, agent, make_pending, role_users, admin_client_for):
    [confirmation] = make_pending(workspace, agent[0])
    client = admin_client_for(role_users[Role.MEMBER])
    for url in (QUEUE, review_url(confirmation)):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = client.post(decide_url(confirmation), {"verdict": "deny", "reason": "x"})
    assert response.status_code == 302
    confirmation.refresh_from_db()
    assert confirmation.status == "pending"


@pytest.mark.parametrize("role", [Role.AUDITOR])
def test_auditor_cannot_review_or_decide(
    workspace, agent, make_pending, role_users, admin_client_for, role
):
    [confirmation] = make_pending(workspace, agent[0])
    assert_out_of_reach(admin_client_for(role_users[role]), confirmation, 403)


def test_approver_of_another_workspace_sees_nothing_of_this_one(
    workspace, other_workspace, agent, make_pending, make_member, admin_client_for, make_key
):
    [confirmation] = make_pending(workspace, agent[0])
    other_key, _ = make_key(other_workspace)
    [theirs] = make_pending(other_workspace, other_key)
    client = admin_client_for(make_member(other_workspace, Role.APPROVER))
    response = client.get(QUEUE)
    assert rows(response) == [theirs.pk]
    assert str(confirmation.pk) not in response.content.decode()
    assert_out_of_reach(client, confirmation, 404)


def test_queue_spans_the_users_workspaces_and_filters_by_one(
    workspace, other_workspace, agent, make_pending, make_key, role_users, admin_client_for
):
    approver = role_users[Role.APPROVER]
    from tenants.services import membership_add

    with operator_seeding():  # set-up: adding an approver is governed
        membership_add(
            reason="test set-up",
            workspace=other_workspace,
            user=approver,
            role=Role.APPROVER,
            actor=SYSTEM,
        )
    other_key, _ = make_key(other_workspace)
    mine = make_pending(workspace, agent[0], count=2)
    theirs = make_pending(other_workspace, other_key, count=1)
    client = admin_client_for(approver)
    assert set(rows(client.get(QUEUE))) == {c.pk for c in mine + theirs}
    assert rows(client.get(QUEUE, {"workspace": other_workspace.slug})) == [theirs[0].pk]


# -- what the queue shows ------------------------------------------------------------


def test_queue_lists_oldest_first_with_everything_an_approver_needs(
    workspace, agent, make_pending, make_tool, role_users, admin_client_for
):
    key, _ = agent
    tool = make_tool(
        workspace, "payments.refund", level="external", data_classes=["financial", "pii"]
    )
    now = timezone.now()
    newer = make_pending(
        workspace,
        key,
        tool=tool,
        start=now - timedelta(minutes=5),
        summary="Refund 20 EUR",
        reason="customer asked",
        params={"amount": 20, "currency": "EUR"},
        irreversible=True,
    )
    older = make_pending(
        workspace, key, tool=tool, start=now - timedelta(hours=2), summary="Refund 10 EUR"
    )
    # Expired but not yet swept, and already decided: not in the queue.
    make_pending(workspace, key, tool=tool, start=now - timedelta(days=2))
    decided = make_pending(workspace, key, tool=tool)
    ConfirmationRequest.objects.filter(pk=decided[0].pk).update(status="denied")

    response = admin_client_for(role_users[Role.APPROVER]).get(QUEUE)
    assert rows(response) == [older[0].pk, newer[0].pk]
    html = response.content.decode()
    assert "Refund 20 EUR" in html and "customer asked" in html
    assert "payments.refund" in html
    assert 'class="warden-badge level-external"' in html
    assert 'class="warden-badge data-class"' in html and ">financial<" in html
    assert 'class="warden-badge irreversible"' in html
    assert key.name in html and key.owner.email in html
    # One line per parameter (amount among the ones that matter, before the rest).
    amount = '<dt class="warden-key-param">amount</dt>\n  <dd><span class="warden-value">20</span>'
    assert amount in html
    assert "expires in" in html and " ago" in html


HOSTILE = {
    "script": "<script>alert('x')</script>",
    "template": "{{ request.user.password }} {% debug %} {% load static %}",
    "html": '<img src=x onerror="alert(1)"><a href="javascript:alert(2)">click</a>',
    "markdown": "[click me](javascript:alert(3)) **bold** <b>bold</b>",
}


def test_agent_supplied_text_renders_inert(
    workspace, agent, make_pending, role_users, admin_client_for
):
    [confirmation] = make_pending(
        workspace,
        agent[0],
        params=HOSTILE,
        reason=HOSTILE["script"] + HOSTILE["template"],
        summary=HOSTILE["html"] + HOSTILE["template"],
    )
    client = admin_client_for(role_users[Role.APPROVER])
    for url in (QUEUE, review_url(confirmation)):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert '<a href="javascript:' not in html
        assert "<b>bold</b>" not in html
        assert "&lt;script&gt;alert(" in html
        assert "&lt;img src=x onerror=" in html
        # Template syntax stays text: not evaluated, not swallowed.
        assert "{{ request.user.password }}" in html
        assert "{% debug %}" in html
        assert "[click me](javascript:alert(3))" in html


def test_hidden_characters_in_agent_text_are_marked_on_queue_and_review(
    workspace, agent, make_pending, role_users, admin_client_for
):
    [confirmation] = make_pending(
        workspace,
        agent[0],
        params={"to": "ann@example.com\u202e\u2066", "body": 'this.\u202eevil",'},
        reason="fine\u200b",
        summary="Send email to ann@example.com\u200d",
    )
    client = admin_client_for(role_users[Role.APPROVER])
    for url in (QUEUE, review_url(confirmation)):
        html = client.get(url).content.decode()
        for char in ("\u202e", "\u2066", "\u200b", "\u200d"):
            assert char not in html
        for code in ("202E", "2066", "200B", "200D"):
            assert f'title="hidden character U+{code}">⟦U+{code}⟧</span>' in html
        assert "ann@example.com<span" in html


def test_review_page_shows_request_and_history_of_same_tool_by_same_key(
    workspace, agent, make_pending, make_tool, make_key, role_users, admin_client_for
):
    key, _ = agent
    tool = make_tool(workspace, "crm.update")
    other_tool = make_tool(workspace, "crm.delete")
    now = timezone.now()
    earlier = make_pending(
        workspace, key, tool=tool, start=now - timedelta(hours=3), params={"marker": "earlier-same"}
    )
    make_pending(
        workspace,
        key,
        tool=other_tool,
        start=now - timedelta(hours=2),
        params={"marker": "other-tool"},
    )
    other_key, _ = make_key(workspace)
    make_pending(
        workspace,
        other_key,
        tool=tool,
        start=now - timedelta(hours=2),
        params={"marker": "other-key"},
    )
    [current] = make_pending(
        workspace,
        key,
        tool=tool,
        start=now - timedelta(minutes=1),
        params={"marker": "current"},
        reason="because",
    )
    response = admin_client_for(role_users[Role.APPROVER]).get(review_url(current))
    assert response.status_code == 200
    history = [item["action"].pk for item in response.context["history"]]
    assert history == [earlier[0].action_request_id]
    html = response.content.decode()
    assert "earlier-same" in html and "other-tool" not in html and "other-key" not in html
    assert 'id="decide-form"' in html and "because" in html


# -- constant queries with a large queue ----------------------------------------------


def _queries_for(client, url, django_assert_max_num_queries, limit):
    with django_assert_max_num_queries(limit) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_queue_page_cost_is_constant_with_ten_thousand_pending(
    workspace,
    agent,
    make_pending,
    role_users,
    admin_client_for,
    django_assert_max_num_queries,
):
    client = admin_client_for(role_users[Role.APPROVER])
    make_pending(workspace, agent[0], count=3)
    small = _queries_for(client, QUEUE, django_assert_max_num_queries, 10)
    make_pending(workspace, agent[0], count=10_000)
    assert ConfirmationRequest.objects.filter(workspace=workspace).count() == 10_003
    first = _queries_for(client, QUEUE, django_assert_max_num_queries, small)
    last = _queries_for(client, QUEUE + "?page=201", django_assert_max_num_queries, small)
    assert first == last == small
    response = client.get(QUEUE + "?page=201")
    assert response.context["page"].number == 201
    assert len(response.context["rows"]) == 3  # 10,003 = 200 full pages + 3
    assert response.context["page"].paginator.count == 10_003


def test_queue_page_cost_does_not_grow_with_rows(
    workspace,
    agent,
    make_pending,
    role_users,
    admin_client_for,
    django_assert_max_num_queries,
):
    client = admin_client_for(role_users[Role.APPROVER])
    make_pending(workspace, agent[0], count=1)
    one = _queries_for(client, QUEUE, django_assert_max_num_queries, 10)
    make_pending(workspace, agent[0], count=120)
    assert _queries_for(client, QUEUE, django_assert_max_num_queries, one) == one


# -- deciding, through the same services as the API ------------------------------------


@pytest.fixture
def gated_tool(workspace):
    with operator_seeding():
        return tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            name="email.send",
            level="read",
            confirmation="always",
            data_classes=["pii"],
            summary_template="Send an email to {params.to}",
        )


def ask(key_client, plaintext, **extra):
    body = {"tool": "email.send", "params": {"to": "a@example.test"}, **extra}
    return key_client(plaintext).post("/api/v1/actions", body, format="json")


def pending_from_api(key_client, plaintext):
    response = ask(key_client, plaintext, reason="weekly report")
    assert response.status_code == 202, response.json()
    body = response.json()
    confirmation = ConfirmationRequest.objects.get(action_request_id=body["id"])
    return confirmation, body["confirmation_token"]


def test_approve_with_reason_lets_the_agent_proceed_once(
    workspace, agent, gated_tool, key_client, role_users, admin_client_for
):
    _, plaintext = agent
    confirmation, token = pending_from_api(key_client, plaintext)
    approver = role_users[Role.APPROVER]
    response = admin_client_for(approver).post(
        decide_url(confirmation), {"verdict": "approve", "reason": "looks fine"}, follow=True
    )
    assert response.status_code == 200
    short_id = str(confirmation.action_request_id)[:8]
    # The message names the request: two pending sends are told apart.
    assert (
        f"Approved: email.send “Send an email to a@example.test” (request {short_id})."
        in messages_of(response)
    )
    confirmation.refresh_from_db()
    assert confirmation.status == "approved"
    record = ApprovalRecord.objects.get(confirmation=confirmation)
    assert (record.verdict, record.reason, record.approver_user) == (
        "approve",
        "looks fine",
        approver,
    )
    assert AuditEntry.objects.filter(
        workspace=workspace,
        action=AuditAction.CONFIRMATION_APPROVED,
        actor=f"user:{approver.email}",
    ).exists()
    again = ask(key_client, plaintext, confirmed=True, confirmation_token=token)
    assert again.status_code == 200 and again.json()["decision"] == "allowed"


def test_deny_with_reason(workspace, agent, gated_tool, key_client, role_users, admin_client_for):
    _, plaintext = agent
    confirmation, token = pending_from_api(key_client, plaintext)
    admin_client_for(role_users[Role.ADMIN]).post(
        decide_url(confirmation), {"verdict": "deny", "reason": "not this week"}
    )
    confirmation.refresh_from_db()
    assert confirmation.status == "denied"
    again = ask(key_client, plaintext, confirmed=True, confirmation_token=token)
    assert again.status_code == 403
    assert again.json()["error"]["code"] == "confirmation_denied"


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reason_is_required(
    workspace, agent, gated_tool, key_client, role_users, admin_client_for, reason
):
    confirmation, _ = pending_from_api(key_client, agent[1])
    response = admin_client_for(role_users[Role.APPROVER]).post(
        decide_url(confirmation), {"verdict": "approve", "reason": reason}, follow=True
    )
    assert any("reason is required" in m for m in messages_of(response))
    confirmation.refresh_from_db()
    assert confirmation.status == "pending"
    assert not ApprovalRecord.objects.exists()


def test_key_owner_gets_the_four_eyes_refusal(
    workspace, make_key, gated_tool, key_client, make_member, admin_client_for
):
    approver = make_member(workspace, Role.APPROVER)
    _, plaintext = make_key(workspace, scopes=["actions:read"], owner=approver)
    confirmation, _ = pending_from_api(key_client, plaintext)
    client = admin_client_for(approver)
    assert "Four-eyes rule" in client.get(review_url(confirmation)).content.decode()
    response = client.post(
        decide_url(confirmation), {"verdict": "approve", "reason": "mine"}, follow=True
    )
    assert any("four_eyes" in m for m in messages_of(response))
    confirmation.refresh_from_db()
    assert confirmation.status == "pending"


def test_irreversible_needs_two_different_approvers_when_the_workspace_says_so(
    workspace, agent, key_client, role_users, admin_client_for
):
    workspace_update(
        reason="test set-up",
        workspace=workspace,
        actor=SYSTEM,
        changes={"require_two_approvals_for_irreversible": True},
    )
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=SYSTEM,
            name="email.send",
            level="read",
            confirmation="always",
            irreversible=True,
        )
    confirmation, token = pending_from_api(key_client, agent[1])
    first = admin_client_for(role_users[Role.APPROVER])
    response = first.post(
        decide_url(confirmation), {"verdict": "approve", "reason": "ok"}, follow=True
    )
    assert any("needs another approver" in m for m in messages_of(response))
    confirmation.refresh_from_db()
    assert confirmation.status == "pending"
    assert "You already gave your verdict" in first.get(review_url(confirmation)).content.decode()
    response = first.post(
        decide_url(confirmation), {"verdict": "approve", "reason": "again"}, follow=True
    )
    assert any("four_eyes" in m for m in messages_of(response))
    admin_client_for(role_users[Role.OWNER]).post(
        decide_url(confirmation), {"verdict": "approve", "reason": "second pair of eyes"}
    )
    confirmation.refresh_from_db()
    assert confirmation.status == "approved"
    assert ask(key_client, agent[1], confirmed=True, confirmation_token=token).status_code == 200


def test_no_action_on_an_expired_request(
    workspace, agent, gated_tool, key_client, role_users, admin_client_for
):
    confirmation, _ = pending_from_api(key_client, agent[1])
    ConfirmationRequest.objects.filter(pk=confirmation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    client = admin_client_for(role_users[Role.APPROVER])
    assert rows(client.get(QUEUE)) == []
    page = client.get(review_url(confirmation)).content.decode()
    assert 'id="decide-form"' not in page and "expired" in page
    response = client.post(
        decide_url(confirmation), {"verdict": "approve", "reason": "late"}, follow=True
    )
    assert any("confirmation_expired" in m for m in messages_of(response))
    confirmation.refresh_from_db()
    assert confirmation.status == "expired"


def test_already_decided_shows_the_service_error(
    workspace, agent, gated_tool, key_client, role_users, admin_client_for
):
    confirmation, _ = pending_from_api(key_client, agent[1])
    admin_client_for(role_users[Role.ADMIN]).post(
        decide_url(confirmation), {"verdict": "deny", "reason": "no"}
    )
    response = admin_client_for(role_users[Role.APPROVER]).post(
        decide_url(confirmation), {"verdict": "approve", "reason": "yes"}, follow=True
    )
    assert any("already_decided" in m for m in messages_of(response))


def test_bulk_deny_with_reason(workspace, agent, make_pending, role_users, admin_client_for):
    pending = make_pending(workspace, agent[0], count=4)
    client = admin_client_for(role_users[Role.APPROVER])
    chosen = [c.pk for c in pending[:3]]
    response = client.post(BULK, {"ids": chosen, "reason": "spam burst"}, follow=True)
    assert any("Denied 3 requests" in m for m in messages_of(response))
    statuses = dict(ConfirmationRequest.objects.values_list("pk", "status"))
    assert [statuses[pk] for pk in chosen] == ["denied"] * 3
    assert statuses[pending[3].pk] == "pending"
    assert set(ApprovalRecord.objects.values_list("reason", flat=True)) == {"spam burst"}
    assert rows(response) == [pending[3].pk]


def test_bulk_deny_needs_a_reason_and_a_selection(
    workspace, agent, make_pending, role_users, admin_client_for
):
    pending = make_pending(workspace, agent[0], count=2)
    client = admin_client_for(role_users[Role.APPROVER])
    response = client.post(BULK, {"ids": [c.pk for c in pending], "reason": ""}, follow=True)
    assert any("reason is required" in m for m in messages_of(response))
    response = client.post(BULK, {"reason": "x"}, follow=True)
    assert any("Select at least one" in m for m in messages_of(response))
    assert not ConfirmationRequest.objects.filter(status="denied").exists()


def test_bulk_deny_ignores_rows_of_other_workspaces(
    workspace, other_workspace, agent, make_pending, make_key, role_users, admin_client_for
):
    mine = make_pending(workspace, agent[0])
    other_key, _ = make_key(other_workspace)
    theirs = make_pending(other_workspace, other_key)
    admin_client_for(role_users[Role.APPROVER]).post(
        BULK, {"ids": [mine[0].pk, theirs[0].pk], "reason": "x"}
    )
    assert ConfirmationRequest.objects.get(pk=mine[0].pk).status == "denied"
    assert ConfirmationRequest.objects.get(pk=theirs[0].pk).status == "pending"


def test_bulk_deny_reports_each_refusal(
    workspace, make_key, make_pending, make_member, admin_client_for
):
    approver = make_member(workspace, Role.APPROVER)
    own_key, _ = make_key(workspace, owner=approver)
    other_key, _ = make_key(workspace)
    own = make_pending(workspace, own_key)
    other = make_pending(workspace, other_key)
    response = admin_client_for(approver).post(
        BULK, {"ids": [own[0].pk, other[0].pk], "reason": "cleanup"}, follow=True
    )
    found = messages_of(response)
    assert any("Denied 1 request" in m for m in found)
    assert any("four_eyes" in m for m in found)


def test_decisions_need_csrf(workspace, agent, make_pending, role_users):
    [confirmation] = make_pending(workspace, agent[0])
    client = Client(enforce_csrf_checks=True)
    client.force_login(role_users[Role.APPROVER])
    page = client.get(QUEUE).content.decode()
    assert re.search(r'name="csrfmiddlewaretoken"', page)
    assert (
        client.post(decide_url(confirmation), {"verdict": "deny", "reason": "x"}).status_code == 403
    )
    assert client.post(BULK, {"ids": [confirmation.pk], "reason": "x"}).status_code == 403
    confirmation.refresh_from_db()
    assert confirmation.status == "pending"


def test_decide_is_post_only(workspace, agent, make_pending, role_users, admin_client_for):
    [confirmation] = make_pending(workspace, agent[0])
    client = admin_client_for(role_users[Role.APPROVER])
    assert client.get(decide_url(confirmation)).status_code == 405
    assert client.get(BULK).status_code == 405


# -- the admin home ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "queue", "evidence"),
    [(Role.OWNER, True, True), (Role.APPROVER, True, False), (Role.AUDITOR, False, True)],
)
def test_admin_home_links_what_each_role_may_use(
    workspace, role_users, admin_client_for, role, queue, evidence
):
    html = admin_client_for(role_users[role]).get("/admin/").content.decode()
    assert ('id="governance-queue"' in html) is queue
    assert ('id="governance-evidence"' in html) is evidence


def test_action_requests_untouched_by_viewing(
    workspace, agent, make_pending, role_users, admin_client_for
):
    make_pending(workspace, agent[0], count=3)
    admin_client_for(role_users[Role.APPROVER]).get(QUEUE)
    assert set(ActionRequest.objects.values_list("status", flat=True)) == {"pending"}


def test_platform_operation_asked_by_a_person_is_in_the_queue(
    workspace, role_users, admin_client_for
):
    from approvals import door, proposals
    from common.actor import Actor

    owner = role_users[Role.OWNER]
    workspace.refresh_from_db()
    result = door.governed_change(
        workspace=workspace,
        actor=Actor.for_user(owner),
        proposal=proposals.workspace_update(workspace, {"outbound_allowed": True}),
        reason="launch",
    )
    assert not result.applied
    confirmation = ConfirmationRequest.objects.get(workspace=workspace)
    html = admin_client_for(role_users[Role.ADMIN]).get(QUEUE).content.decode()
    assert f"user:{owner.email}" in html and "platform operation" in html
    response = admin_client_for(owner).post(
        decide_url(confirmation), {"verdict": "approve", "reason": "mine"}, follow=True
    )
    assert any("four_eyes" in m for m in messages_of(response))
    # A workspace change is decided only by someone who may manage the workspace.
    response = admin_client_for(role_users[Role.ADMIN]).post(
        decide_url(confirmation), {"verdict": "approve", "reason": "agreed"}, follow=True
    )
    assert any("forbidden_by_scope" in m for m in messages_of(response))
    confirmation.refresh_from_db()
    assert confirmation.status == "pending"


def test_review_page_cost_does_not_grow_with_history(
    workspace,
    agent,
    make_pending,
    make_tool,
    role_users,
    admin_client_for,
    django_assert_max_num_queries,
):
    tool = make_tool(workspace)
    client = admin_client_for(role_users[Role.APPROVER])
    make_pending(workspace, agent[0], tool=tool, count=2, start=timezone.now() - timedelta(hours=5))
    [current] = make_pending(workspace, agent[0], tool=tool)
    few = _queries_for(client, review_url(current), django_assert_max_num_queries, 12)
    make_pending(
        workspace, agent[0], tool=tool, count=200, start=timezone.now() - timedelta(hours=4)
    )
    assert _queries_for(client, review_url(current), django_assert_max_num_queries, few) == few
