import os

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from approvals import door, proposals
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Role, Workspace
from tenants.services import user_get_or_create


class Command(BaseCommand):
    help = (
        "Add a member (the user is created if missing; password from WARDEN_PASSWORD, "
        "else unusable). Making someone an admin or owner is a governed operation: refused "
        "here unless --break-glass gives the reason (recorded as an override)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument(
            "--reason",
            default="",
            help="Why (required, not blank): recorded in the change's version log.",
        )
        parser.add_argument(
            "--break-glass",
            default="",
            metavar="REASON",
            help="Apply a governed change directly, as an operator; recorded as break-glass.",
        )

    def handle(self, slug, email, role, break_glass, reason, **options):
        workspace = Workspace.objects.active().filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace {slug!r}.")
        try:
            # One transaction: a refused change leaves no user behind, and a break-glass
            # membership commits with its audit entry and override record or not at all.
            with transaction.atomic():
                self.add(workspace, email, role, break_glass, reason)
        except WardenError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Added {email} to {slug} as {role}")

    def add(self, workspace, email, role, break_glass, reason):
        user = user_get_or_create(email=email, password=os.environ.get("WARDEN_PASSWORD"))
        door.governed_change(
            workspace=workspace,
            actor=Actor.system("cli"),
            proposal=proposals.membership_add(workspace, user, role),
            reason=reason,
            break_glass=break_glass,
        )
