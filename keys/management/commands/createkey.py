from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from common.actor import Actor
from common.errors import WardenError
from keys.services import key_create
from tenants.models import Membership, Workspace


class Command(BaseCommand):
    help = "Create a machine key; the full key is printed alone on the last line of stdout."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="Email of a workspace member")
        parser.add_argument("--scopes", required=True, help='e.g. "actions:read actions:write"')
        parser.add_argument("--tools", default="", help='Allowlist, e.g. "crm.* email.send"')
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, slug, name, owner, scopes, tools, expires_in_days, **options):
        workspace = Workspace.objects.active().filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace {slug!r}.")
        membership = (
            Membership.objects.filter(workspace=workspace, user__email__iexact=owner)
            .select_related("user")
            .first()
        )
        if membership is None:
            raise CommandError(f"{owner} is not a member of {slug}.")
        expires_at = None
        if expires_in_days is not None:
            if expires_in_days < 1:
                raise CommandError("--expires-in-days must be at least 1.")
            expires_at = timezone.now() + timedelta(days=expires_in_days)
        try:
            issued = key_create(
                workspace=workspace,
                name=name,
                owner=membership.user,
                scopes=scopes.split(),
                tool_allowlist=tools.split(),
                expires_at=expires_at,
                actor=Actor.system("cli"),
            )
        except WardenError as exc:
            raise CommandError(f"{exc.message} {exc.detail or ''}".strip()) from None
        self.stdout.write(f"Created key {issued.key.name} ({issued.key.pk}); shown once:")
        self.stdout.write(issued.plaintext)
