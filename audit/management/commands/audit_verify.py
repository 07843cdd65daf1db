"""Verify audit chains: `python manage.py audit_verify [SLUG] [--checkpoints FILE]`.

Prints one line per workspace with entries/s; exits non-zero naming the first bad
sequence number of every broken chain. Signed checkpoints are checked from the table
and, with --checkpoints, from an exported copy (a JSON-lines file or the export
directory), which is what catches a database rewound past its own checkpoints.
Each verdict is also appended to the chain it judged (`audit.verified`; a broken chain
opens a critical exception record) unless --no-record is given. Queued entries (group
commit) are sealed first (a forged queue row is quarantined then, and the chain is
reported broken until its exception record is resolved); with --no-seal nothing is
written and entries still queued are reported as pending, with the oldest one's age."""

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import CheckpointFileError
from audit.progress import ProgressBar
from audit.selectors import workspace_model
from audit.services import audit_seal_pending, audit_verify_and_record
from audit.verify import verify_chain
from common.actor import Actor


class Command(BaseCommand):
    help = "Verify the hash chain of one workspace (by slug) or of all workspaces."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="workspace slug (default: all)")
        parser.add_argument(
            "--no-record", action="store_true", help="do not append the verdict to the chain"
        )
        parser.add_argument(
            "--no-seal",
            action="store_true",
            help="read only: do not seal queued entries first (implies --no-record)",
        )
        parser.add_argument(
            "--checkpoints",
            metavar="FILE",
            help="exported signed checkpoints (JSON lines, or the export directory)",
        )

    def handle(self, *args, slug=None, no_record=False, no_seal=False, checkpoints=None, **options):
        workspaces = workspace_model().objects.order_by("slug")
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
            try:
                if no_record or no_seal:
                    if not no_seal:
                        audit_seal_pending(workspace)  # queued entries join the chain first
                    result = verify_chain(workspace, progress=bar, checkpoint_file=checkpoints)
                else:
                    result = audit_verify_and_record(
                        workspace=workspace, actor=actor, progress=bar, checkpoint_file=checkpoints
                    )
            except CheckpointFileError as exc:
                raise CommandError(f"--checkpoints: {exc}") from None
            bar.finish()
            total_entries += result.entries_checked
            total_seconds += result.seconds
            rate = f"{result.entries_per_second:,.0f} entries/s"
            signed = f", signed through #{result.last_signed_seq}" if result.last_signed_seq else ""
            if result.pending:
                signed += (
                    f", {result.pending} queued entr{'y' if result.pending == 1 else 'ies'}"
                    f" valid, pending (oldest {result.pending_age_seconds:.1f} s)"
                )
            if result.quarantined:
                signed += f", {result.quarantined} row(s) in quarantine"
            if result.ok:
                self.stdout.write(
                    f"{workspace.slug}: ok, {result.entries_checked:,} entries in "
                    f"{result.seconds:.3f} s ({rate}){signed}"
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
