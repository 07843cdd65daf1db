from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from approvals import door, proposals
from common.actor import Actor
from common.errors import WardenError
from keys.services import check_mintable
from tenants.models import Membership, Workspace


class Command(BaseCommand):
    help = (
        "Create a machine key; the full key is printed alone on the last line of stdout. "
        "A key with a governance scope (workspace:admin, tools:write, keys:write, "
        "members:write, connectors:write) goes through the governed-operation door: refused "
        "here unless --break-glass gives the reason (recorded as an override)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="Email of a workspace member")
        parser.add_argument("--scopes", required=True, help='e.g. "actions:read actions:write"')
        parser.add_argument("--tools", default="", help='Allowlist, e.g. "crm.* email.send"')
        parser.add_argument("--expires-in-days", type=int, default=None)
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

    def handle(
        self, slug, name, owner, scopes, tools, expires_in_days, break_glass, reason, **options
    ):
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
        fields = {
            "name": name,
            "scopes": scopes.split(),
            "tool_allowlist": tools.split(),
            "expires_at": expires_at,
        }
        actor = Actor.system("cli")
        try:
            check_mintable(workspace=workspace, actor=actor, fields=fields)
            result = door.governed_change(
                workspace=workspace,
                actor=actor,
                proposal=proposals.key_create(workspace, membership.user, fields),
                reason=reason,
                break_glass=break_glass,
            )
        except WardenError as exc:
            raise CommandError(f"{exc.message} {exc.detail or ''}".strip()) from None
        issued = result.result
        self.stdout.write(f"Created key {issued.key.name} ({issued.key.pk}); shown once:")
        self.stdout.write(issued.plaintext)
