"""Apply data minimisation: `python manage.py prune_plain_copies [SLUG]`.

Replaces plain copies of action parameters and outputs older than each workspace's
`plain_copy_retention_days` by their SHA-256 digest and size (approvals/minimisation.py);
each batch is recorded in the audit log."""

from django.core.management.base import BaseCommand, CommandError

from approvals.minimisation import plain_copies_prune
from common.actor import Actor
from tenants.models import Workspace


class Command(BaseCommand):
    help = "Prune plain copies of action parameters and outputs past each workspace's period."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?")

    def handle(self, *args, slug=None, **options):
        workspaces = (
            Workspace.objects.active()
            .filter(plain_copy_retention_days__isnull=False)
            .order_by("slug")
        )
        if slug:
            workspaces = Workspace.objects.active().filter(slug=slug)
            if not workspaces.exists():
                raise CommandError(f"No workspace with slug {slug!r}.")
        actor = Actor.system("prune_plain_copies")
        for workspace in workspaces:
            result = plain_copies_prune(workspace=workspace, actor=actor)
            if result.retention_days is None:
                self.stdout.write(f"{workspace.slug}: plain copies are kept forever")
            elif result.audit_entries:
                counts = ", ".join(f"{n:,} {name}" for name, n in sorted(result.pruned.items()))
                self.stdout.write(f"{workspace.slug}: pruned {counts}")
            else:
                self.stdout.write(f"{workspace.slug}: nothing to prune")
