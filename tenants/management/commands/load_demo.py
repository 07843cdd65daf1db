from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from approvals.demo import load_demo_tools
from approvals.guard import operator_seeding
from common.actor import Actor
from keys.models import MachineKey
from keys.services import key_create, key_rotate
from tenants.models import Membership, Role, Workspace
from tenants.services import membership_add, user_get_or_create, workspace_create, workspace_update

DEMO_SLUG = "demo"
DEMO_PASSWORD = "warden-demo"
DEMO_USERS = (
    ("owner@demo.local", Role.OWNER),
    ("approver@demo.local", Role.APPROVER),
    ("auditor@demo.local", Role.AUDITOR),
)
DEMO_KEY_NAME = "demo-agent"


class Command(BaseCommand):
    help = (
        "Create (or refresh) the demo workspace. Idempotent; each run issues a fresh "
        "demo agent key (the old one stops working) because secrets are shown only once."
    )

    def handle(self, **options):
        # Seeding a demo is an operator's act at a shell: governed settings (writes on,
        # tools without confirmation, an admin member) are set directly.
        with transaction.atomic(), operator_seeding():
            self.seed()

    def seed(self) -> None:
        actor = Actor.system("load_demo")
        users = {}
        for email, _role in DEMO_USERS:
            user = user_get_or_create(email=email)
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
            users[email] = user
        owner = users["owner@demo.local"]
        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        if workspace is None:
            workspace = workspace_create(
                slug=DEMO_SLUG,
                name="Demo workspace",
                owner=owner,
                actor=actor,
                reason="demo: seeded by load_demo",
            )
            workspace = workspace_update(
                workspace=workspace,
                actor=actor,
                changes={"writes_enabled": True},
                reason="demo: show write confirmations",
            )
        for email, role in DEMO_USERS:
            if not Membership.objects.filter(workspace=workspace, user=users[email]).exists():
                membership_add(
                    workspace=workspace,
                    user=users[email],
                    role=role,
                    actor=actor,
                    reason="demo: seeded by load_demo",
                )
        self.load_tools(workspace, actor)
        key = MachineKey.objects.filter(
            workspace=workspace, name=DEMO_KEY_NAME, revoked_at__isnull=True
        ).first()
        if key is None:
            issued = key_create(
                workspace=workspace,
                name=DEMO_KEY_NAME,
                owner=owner,
                scopes=["actions:read", "actions:write", "actions:external", "audit:read"],
                tool_allowlist=["crm.*", "email.send", "billing.*"],
                actor=actor,
                reason="demo: seeded by load_demo",
            )
        else:
            issued = key_rotate(key=key, actor=actor, grace=timedelta(0))
        self.stdout.write(
            f"Demo workspace '{DEMO_SLUG}' ready.\n"
            f"  Admin login: {settings.WARDEN_PUBLIC_URL or 'http://127.0.0.1:8000'}/admin/  "
            f"owner@demo.local / {DEMO_PASSWORD} (also approver@demo.local, auditor@demo.local)\n"
            f"  Demo agent key (shown once):\n{issued.plaintext}"
        )

    def load_tools(self, workspace, actor) -> None:
        """The demo tool catalog (approvals.demo)."""
        load_demo_tools(workspace=workspace, actor=actor)
