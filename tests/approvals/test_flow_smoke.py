from approvals.models import ActionRequest, ConfirmationRequest


def test_write_tool_needs_confirmation_then_allows_once(
    live_workspace, agent, approver, make_tool, ask, approve
):
    key, client = agent
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    first = ask(client, "crm.update_stage", {"deal": 7, "stage": "won"})
    assert first.status_code == 202, first.json()
    body = first.json()
    assert body["decision"] == "requires_confirmation"
    assert body["confirmation_token"].startswith("ct_")
    confirmation = ConfirmationRequest.objects.get(action_request_id=body["id"])
    again = dict(confirmed=True, confirmation_token=body["confirmation_token"])
    assert ask(client, "crm.update_stage", {"deal": 7, "stage": "won"}, **again).status_code == 409
    assert approve(approver, live_workspace, confirmation.pk).status_code == 200
    ok = ask(client, "crm.update_stage", {"deal": 7, "stage": "won"}, **again)
    assert ok.status_code == 200, ok.json()
    assert ok.json() == {"id": body["id"], "decision": "allowed", "dry_run": False}
    used = ask(client, "crm.update_stage", {"deal": 7, "stage": "won"}, **again)
    assert used.json()["error"]["code"] == "confirmation_used"
    assert ActionRequest.objects.get(pk=body["id"]).status == "allowed"
