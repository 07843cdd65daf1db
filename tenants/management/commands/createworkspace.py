from django.core.management.base import BaseCommand, CommandError

from common.actor import Actor
from common.errors import WardenError
from tenants.services import user_get_or_create, workspace_create


class Command(BaseCommand):
    help = "Create a workspace with an owner (the user is created if missing)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="Owner's email")
        parser.add_argument(
            "--reason",
            default="",
            help="Why (required, not blank): recorded in the change's version log.",
        )

    def handle(self, slug, name, owner, reason, **options):
        try:
            user = user_get_or_create(email=owner)
            workspace = workspace_create(
                slug=slug, name=name, owner=user, actor=Actor.system("cli"), reason=reason
            )
        except WardenError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Created workspace {workspace.slug} ({workspace.pk}) owned by {owner}")
