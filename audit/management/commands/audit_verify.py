"""Verify audit chains: `python manage.py audit_verify [SLUG]`.

Prints one line per workspace with entries/s; exits non-zero naming the first bad
sequence number of every broken chain. Each verdict is also appended to the chain it
judged (`audit.verified`; a broken chain opens a critical exception record) unless
--no-record is given."""

from django.core.management.base import BaseCommand, CommandError

from audit.progress import ProgressBar
from audit.services import audit_verify_and_record
from audit.verify import verify_chain
from common.actor import Actor
from tenants.models import Workspace


class Command(BaseCommand):
    help = "Verify the hash chain of one workspace (by slug) or of all workspaces."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="workspace slug (default: all)")
        parser.add_argument(
            "--no-record", action="store_true", help="do not append the verdict to the chain"
        )

    def handle(self, *args, slug=None, no_record=False, **options):
        workspaces = Workspace.objects.order_by("slug")
        if slug:
            workspaces = workspaces.filter(slug=slug)
            if not workspaces.exists():
                raise CommandError(f"No workspace with slug {slug!r}.")
        actor = Actor.system("audit_verify")
        broken = []
        total_entries = 0
        total_seconds = 0.0
        for workspace in workspaces.iterator():
            bar = ProgressBar(self.stdout, label=workspace.slug)
            if no_record:
                result = verify_chain(workspace, progress=bar)
            else:
                result = audit_verify_and_record(workspace=workspace, actor=actor, progress=bar)
            bar.finish()
            total_entries += result.entries_checked
            total_seconds += result.seconds
            rate = f"{result.entries_per_second:,.0f} entries/s"
            if result.ok:
                self.stdout.write(
                    f"{workspace.slug}: ok, {result.entries_checked:,} entries in "
                    f"{result.seconds:.3f} s ({rate})"
                )
            else:
                broken.append(result)
                self.stdout.write(
                    self.style.ERROR(
                        f"{workspace.slug}: BROKEN at #{result.first_bad_seq}: {result.problem}"
                        + (f" ({result.detail})" if result.detail else "")
                        + f" after {result.entries_checked:,} entries ({rate})"
                    )
                )
        if total_seconds > 0:
            self.stdout.write(
                f"total: {total_entries:,} entries in {total_seconds:.3f} s "
                f"({total_entries / total_seconds:,.0f} entries/s)"
            )
        if broken:
            names = ", ".join(f"{r.workspace} at #{r.first_bad_seq} ({r.problem})" for r in broken)
            raise CommandError(f"audit chain broken: {names}")
