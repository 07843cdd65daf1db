"""Write a workspace's signed checkpoints as JSON lines: `audit_checkpoints SLUG > file`.

The copy to keep outside the database (the scheduled export sends each checkpoint on its
own); `audit_verify SLUG --checkpoints file` holds the chain to it later."""

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import checkpoint_line
from audit.models import AuditCheckpoint
from audit.selectors import workspace_model


class Command(BaseCommand):
    help = "Print a workspace's signed audit checkpoints (JSON lines)."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        workspace = workspace_model().objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r}.")
        rows = AuditCheckpoint.objects.filter(workspace=workspace).order_by("seq")
        for checkpoint in rows.iterator(chunk_size=1000):
            self.stdout.write(checkpoint_line(checkpoint), ending="")
