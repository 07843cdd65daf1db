"""The message after a decision names the request (tool, summary, short id), so an
approver with two similar pending requests knows which one they just decided."""

import pytest

from tenants.models import Role
from tests.admin_ui.test_approval_queue import decide_url, messages_of, review_url


@pytest.fixture
def approver(role_users):
    return role_users[Role.APPROVER]


@pytest.fixture
def two_pending(workspace, make_key, make_member, make_pending):
    key = make_key(workspace, scopes=["actions:write"], owner=make_member(workspace))[0]
    return make_pending(workspace, key, count=2)


@pytest.mark.parametrize("verdict,word", [("approve", "Approved"), ("deny", "Denied")])
def test_the_success_message_names_which_of_two_similar_requests_was_decided(
    two_pending, approver, admin_client_for, verdict, word
):
    first, second = two_pending
    response = admin_client_for(approver).post(
        decide_url(second), {"verdict": verdict, "reason": "checked"}, follow=True
    )
    [message] = messages_of(response)
    assert message == (
        f"{word}: crm.update “Update record 1” (request {str(second.action_request_id)[:8]})."
    )
    assert str(first.action_request_id)[:8] not in message


def test_a_refusal_names_the_code_and_changes_nothing(two_pending, approver, admin_client_for):
    first, _ = two_pending
    client = admin_client_for(approver)
    client.post(decide_url(first), {"verdict": "deny", "reason": "no"})
    response = client.post(decide_url(first), {"verdict": "approve", "reason": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == review_url(first)
    assert any("already_decided" in m for m in messages_of(response))
