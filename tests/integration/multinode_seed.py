"""Seeds the database of tests/integration/test_multinode.py through the services, as an
operator at a shell would, and prints what the HTTP clients need as JSON. Run in a
subprocess with the nodes' environment:
`python -m tests.integration.multinode_seed <rate limit> <webhook url>`."""

import json
import os
import secrets
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test import Client

    from approvals.catalog import tool_create
    from approvals.guard import operator_seeding
    from common.actor import Actor
    from keys.services import key_create
    from notifications.services import automation_settings_update, endpoint_create
    from tenants.models import Role
    from tenants.services import membership_add, user_get_or_create, workspace_create

    rate_limit, webhook_url = int(sys.argv[1]), sys.argv[2]
    system = Actor.system("tests")
    with operator_seeding():
        owner = user_get_or_create(email="owner@nodes.test")
        approver = user_get_or_create(email="approver@nodes.test")
        workspace = workspace_create(
            reason="test set-up", slug="nodes", name="Nodes", owner=owner, actor=system
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
        lookup = tool_create(
            reason="test set-up", workspace=workspace, actor=system, name="crm.lookup", level="read"
        )
        tool_create(
            reason="test set-up",
            workspace=workspace,
            actor=system,
            name="crm.update_stage",
            level="write",
            confirmation="always",
        )

        def key(name: str, scopes: list[str], rate: int = 100_000) -> str:
            return key_create(
                reason="test set-up",
                workspace=workspace,
                name=name,
                owner=owner,
                scopes=scopes,
                tool_allowlist=["crm.*"],
                rate_limit_per_minute=rate,
                actor=system,
            ).plaintext

        agent = key("agent", ["actions:read", "actions:write"])
        catalog_admin = key("catalog-admin", ["tools:write"])
        limited = key("limited", ["actions:read"], rate=rate_limit)
        # Last, so that nothing above produces a notification.
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
                "workspace": workspace.slug,
                "agent": agent,
                "catalog_admin": catalog_admin,
                "limited": limited,
                "lookup_id": str(lookup.pk),
                "session": session.cookies["sessionid"].value,
                "csrf": secrets.token_hex(16),
                "webhook_secret": webhook_secret,
            }
        )
    )


if __name__ == "__main__":
    main()
