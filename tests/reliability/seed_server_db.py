"""Seeds a fresh database for tests/reliability through the services, as an operator
would, and prints what the concurrent clients need as JSON. Run in a subprocess with
the server's environment: `python -m tests.reliability.seed_server_db`."""

import json
import os
import secrets
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test import Client

    from approvals.asking import action_submit
    from approvals.catalog import tool_create
    from approvals.confirmations import confirmation_approve
    from approvals.guard import operator_seeding
    from approvals.models import ConfirmationRequest
    from common.actor import Actor
    from keys.services import key_create
    from notifications.services import automation_settings_update, endpoint_create
    from tenants.models import Role
    from tenants.services import membership_add, user_get_or_create, workspace_create

    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    webhook_url = sys.argv[2] if len(sys.argv) > 2 else ""
    system = Actor.system("tests")
    with operator_seeding():  # set-up, as an operator at a shell
        owner = user_get_or_create(email="owner@reliability.test")
        approver = user_get_or_create(email="approver@reliability.test")
        workspace = workspace_create(
            reason="test set-up", slug="reliability", name="Reliability", owner=owner, actor=system
        )
        workspace.writes_enabled = True
        workspace.mode = "live"
        workspace.save()
        membership_add(
            reason="test set-up",
            workspace=workspace,
            user=approver,
            role=Role.APPROVER,
            actor=system,
        )
        tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=system,
            name="crm.update_stage",
            level="write",
            confirmation="always",
        )
        tool_create(
            reason="test set-up", workspace=workspace, actor=system, name="crm.lookup", level="read"
        )
        issued = key_create(
            reason="test set-up",
            workspace=workspace,
            name="agent",
            owner=owner,
            scopes=["actions:read", "actions:write", "actions:external"],
            tool_allowlist=["crm.*"],
            rate_limit_per_minute=100_000,
            actor=system,
        )
    key = issued.key
    agent = Actor.for_key(key)

    def ask(tool, params):
        return action_submit(key=key, tool_name=tool, params=params, actor=agent)

    approved = ask("crm.update_stage", {"deal": 0})
    confirmation_approve(
        confirmation=ConfirmationRequest.objects.get(action_request_id=approved.action_id),
        reason="fine",
        actor=Actor.for_user(approver),
    )
    to_deny = [
        str(
            ConfirmationRequest.objects.get(
                action_request_id=ask("crm.update_stage", {"deal": n + 1}).action_id
            ).pk
        )
        for n in range(pairs)
    ]
    allowed = [ask("crm.lookup", {"id": n}).action_id for n in range(pairs)]
    webhook_secret = ""
    if webhook_url:  # last, so that seeding itself sends nothing
        with operator_seeding():
            automation_settings_update(
                reason="test set-up",
                workspace=workspace,
                actor=system,
                changes={"webhook_host_allowlist": ["127.0.0.1"]},
                operator=True,
            )
            webhook_secret = endpoint_create(
                reason="test set-up",
                workspace=workspace,
                name="hooks",
                url=webhook_url,
                events=["confirmation.requested"],
                actor=system,
            ).secret
    session = Client()
    session.force_login(approver)
    print(
        json.dumps(
            {
                "key": issued.plaintext,
                "workspace": workspace.slug,
                "confirm": {"params": {"deal": 0}, "token": approved.confirmation_token},
                "to_deny": to_deny,
                "allowed": allowed,
                "session": session.cookies["sessionid"].value,
                "csrf": secrets.token_hex(16),
                "webhook_secret": webhook_secret,
            }
        )
    )


if __name__ == "__main__":
    main()
