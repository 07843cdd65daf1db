import os

from django.core.management.base import BaseCommand, CommandError

from common.actor import Actor
from common.errors import WardenError
from tenants.models import Role, Workspace
from tenants.services import membership_add, user_get_or_create


class Command(BaseCommand):
    help = (
        "Add a member (the user is created if missing; password from WARDEN_PASSWORD, "
        "else unusable)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, slug, email, role, **options):
        workspace = Workspace.objects.active().filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace {slug!r}.")
        try:
            user = user_get_or_create(email=email, password=os.environ.get("WARDEN_PASSWORD"))
            membership_add(workspace=workspace, user=user, role=role, actor=Actor.system("cli"))
        except WardenError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Added {email} to {slug} as {role}")
