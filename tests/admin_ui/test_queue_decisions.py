"""The queue and review pages tell an approver what they may decide and what approving
does: undecidable rows are marked with the reason and have no buttons; rows can be
decided from the queue; the effect of approving is said in plain words."""

import re

import pytest

from approvals.models import ActionRequest, ApprovalRecord, ConfirmationRequest
from tenants.models import Role
from tests.admin_ui.test_approval_queue import QUEUE, decide_url, messages_of, review_url


def _row_html(html: str, confirmation) -> str:
    match = re.search(
        rf'<tr [^>]*data-confirmation="{confirmation.pk}">(.*?)</tr>', html, flags=re.S
    )
    assert match, "row not in the queue"
    return match.group(1)


@pytest.fixture
def approver(role_users):
    return role_users[Role.APPROVER]


@pytest.fixture
def own_key(workspace, make_key, approver):
    """A key the approver owns: they answer for its requests (four eyes)."""
    return make_key(workspace, scopes=["actions:write"], owner=approver)[0]


@pytest.fixture
def others_key(workspace, make_key, make_member):
    return make_key(workspace, scopes=["actions:write"], owner=make_member(workspace))[0]


def test_rows_the_viewer_answers_for_are_marked_and_have_no_buttons(
    workspace, own_key, others_key, make_pending, approver, admin_client_for
):
    [mine] = make_pending(workspace, own_key)
    [theirs] = make_pending(workspace, others_key)
    html = admin_client_for(approver).get(QUEUE).content.decode()

    mine_html = _row_html(html, mine)
    assert "You are answerable for this request" in mine_html
    assert 'name="verdict"' not in mine_html and 'name="ids"' not in mine_html
    assert f'id="decide-{mine.pk}"' not in html
    assert ">View<" in mine_html

    theirs_html = _row_html(html, theirs)
    assert "answerable" not in theirs_html
    assert f'value="approve" form="decide-{theirs.pk}"' in theirs_html
    assert f'form="decide-{theirs.pk}"' in theirs_html and 'name="ids"' in theirs_html
    assert f'action="{decide_url(theirs)}" id="decide-{theirs.pk}"' in html


def test_review_page_of_an_undecidable_request_has_no_decide_form(
    workspace, own_key, make_pending, approver, admin_client_for
):
    [mine] = make_pending(workspace, own_key)
    html = admin_client_for(approver).get(review_url(mine)).content.decode()
    assert 'id="undecidable"' in html and "Four-eyes rule" in html
    assert 'id="decide-form"' not in html and 'name="verdict"' not in html


def test_a_row_already_voted_on_is_marked(
    workspace, others_key, make_pending, approver, admin_client_for
):
    [pending] = make_pending(workspace, others_key)
    ConfirmationRequest.objects.filter(pk=pending.pk).update(approvals_required=2)
    ApprovalRecord.objects.create(
        workspace=workspace,
        confirmation=pending,
        approver=f"user:{approver.email}",
        approver_user=approver,
        verdict="approve",
        reason="ok",
        threshold=2,
    )
    html = admin_client_for(approver).get(QUEUE).content.decode()
    row = _row_html(html, pending)
    assert "You already gave your verdict" in row and 'name="verdict"' not in row


def test_approve_from_the_queue_row_returns_to_the_queue_naming_the_request(
    workspace, others_key, make_pending, approver, admin_client_for
):
    [first, second] = make_pending(workspace, others_key, count=2)
    client = admin_client_for(approver)
    response = client.post(
        decide_url(second),
        {"verdict": "approve", "reason": "expected refund", "next": QUEUE},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == QUEUE
    short_id = str(second.action_request_id)[:8]
    assert f"Approved: crm.update “Update record 1” (request {short_id})." in messages_of(response)
    second.refresh_from_db()
    first.refresh_from_db()
    assert (second.status, first.status) == ("approved", "pending")
    assert [row["confirmation"].pk for row in response.context["rows"]] == [first.pk]


def test_deny_from_the_queue_row_needs_a_reason(
    workspace, others_key, make_pending, approver, admin_client_for
):
    [pending] = make_pending(workspace, others_key)
    response = admin_client_for(approver).post(
        decide_url(pending), {"verdict": "deny", "reason": " ", "next": QUEUE}, follow=True
    )
    assert any("reason is required" in m for m in messages_of(response))
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_review_states_the_effect_of_approving(
    workspace, others_key, make_pending, make_tool, approver, admin_client_for
):
    tool = make_tool(
        workspace, "billing.refund", description="Refund a card payment.", level="external"
    )
    [dry] = make_pending(workspace, others_key, tool=tool, irreversible=True)
    ActionRequest.objects.filter(pk=dry.action_request_id).update(dry_run=True)
    html = admin_client_for(approver).get(review_url(dry)).content.decode()
    assert "Dry run: nothing will be executed for real" in html
    assert "Irreversible: once done it cannot be undone." in html
    assert "External: it reaches outside the company" in html
    assert '<span id="tool-description">Refund a card payment.</span>' in html


def test_review_of_a_live_request_says_it_runs_for_real(
    workspace, others_key, make_pending, approver, admin_client_for
):
    [live] = make_pending(workspace, others_key)
    html = admin_client_for(approver).get(review_url(live)).content.decode()
    assert "Approving lets the agent run crm.update once" in html
    assert "Dry run: nothing" not in html and "Irreversible: once" not in html


def test_review_shows_governed_changes_before_and_after_with_their_effect(
    workspace, others_key, make_pending, approver, admin_client_for
):
    params = {
        "workspace": "acme",
        "changes": {"mode": {"before": "dry_run", "after": "live"}},
        "effect": "Agents' actions will be executed for real.<b>",
    }
    [change] = make_pending(workspace, others_key, params=params)
    html = admin_client_for(approver).get(review_url(change)).content.decode()
    table = re.search(r'<table id="governed-changes">(.*?)</table>', html, flags=re.S).group(1)
    assert re.search(
        r"<td>mode</td><td><code>&quot;dry_run&quot;</code></td>.*?"
        r"<td><code>&quot;live&quot;</code></td>",
        table,
        flags=re.S,
    )
    assert "Agents&#x27; actions will be executed for real.&lt;b&gt;" in html


def test_go_live_shows_before_after_and_only_managers_may_decide(
    workspace, role_users, make_member, user_client, admin_client_for
):
    """A real governed change (approvals.door): the proposer answers for it, a plain
    approver lacks manage_workspace, a second owner sees what changes and decides."""
    owner = role_users[Role.OWNER]
    proposed = user_client(owner, workspace).patch(
        "/api/v1/workspace", {"reason": "test change", "mode": "live"}, format="json"
    )
    assert proposed.status_code == 202, proposed.json()
    confirmation = ConfirmationRequest.objects.get(action_request_id=proposed.json()["id"])

    approver_html = admin_client_for(role_users[Role.APPROVER]).get(QUEUE).content.decode()
    row = _row_html(approver_html, confirmation)
    assert "needs the “manage_workspace” permission" in row and 'name="verdict"' not in row
    owner_row = _row_html(admin_client_for(owner).get(QUEUE).content.decode(), confirmation)
    assert "You are answerable" in owner_row and 'name="verdict"' not in owner_row

    second_owner = make_member(workspace, Role.OWNER)
    html = admin_client_for(second_owner).get(review_url(confirmation)).content.decode()
    table = re.search(r'<table id="governed-changes">(.*?)</table>', html, flags=re.S).group(1)
    assert re.search(r"<td>mode</td><td><code>&quot;dry_run&quot;</code></td>", table)
    assert "&quot;live&quot;" in table
    assert 'id="governed-effect"' in html
    assert "Approving applies this change to Warden at once, for real." in html
    assert "Dry run: nothing will be executed" not in html
    assert 'id="decide-form"' in html
