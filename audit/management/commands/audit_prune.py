"""Apply audit retention: `python manage.py audit_prune [SLUG]`.

Deletes entries older than each workspace's `audit_retention_days` (unset: kept
forever) behind a signed checkpoint, so the chain still verifies (audit/retention.py)."""

from django.core.management.base import BaseCommand, CommandError

from audit.retention import audit_prune
from audit.selectors import workspace_model
from common.actor import Actor


class Command(BaseCommand):
    help = "Prune audit entries past each workspace's retention period."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?")

    def handle(self, *args, slug=None, **options):
        workspaces = (
            workspace_model().objects.filter(audit_retention_days__isnull=False).order_by("slug")
        )
        if slug:
            workspaces = workspace_model().objects.filter(slug=slug)
            if not workspaces.exists():
                raise CommandError(f"No workspace with slug {slug!r}.")
        actor = Actor.system("audit_prune")
        for workspace in workspaces:
            result = audit_prune(workspace=workspace, actor=actor)
            if workspace.audit_retention_days is None:
                self.stdout.write(f"{workspace.slug}: retention is forever; nothing pruned")
            elif result.pruned_entries:
                self.stdout.write(
                    f"{workspace.slug}: pruned {result.pruned_entries:,} entries through "
                    f"#{result.through_seq}; checkpoint #{result.checkpoint_seq}"
                )
            else:
                self.stdout.write(f"{workspace.slug}: nothing to prune")
