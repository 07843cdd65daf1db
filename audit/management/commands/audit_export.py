"""Stream a workspace's chain: `audit_export SLUG [--since ...] [--format ...] > file`.

Constant memory whatever the chain length; progress on stderr when it is a terminal.
The output verifies with the documentation recipe. The export itself is recorded in the
chain (`audit.exported`) unless --no-record is given."""

from django.core.management.base import BaseCommand, CommandError

from audit.export import export_count, iter_export_rows
from audit.progress import ProgressBar
from audit.selectors import parse_when, workspace_model
from audit.services import audit_record_export, audit_seal_pending
from audit.siem import FORMATS, encoder
from common.actor import Actor
from common.errors import WardenError

FLUSH_EVERY = 1000


class Command(BaseCommand):
    help = "Export a workspace's audit chain to stdout (JSONL, with hashes)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--since", help="ISO 8601 date or timestamp (created_at >= since)")
        parser.add_argument("--after-seq", type=int, default=0, help="entries after this seq")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default="jsonl",
            help="jsonl (Warden's own), ocsf (OCSF 1.2.0 API Activity), syslog (RFC 5424)",
        )
        parser.add_argument("--no-record", action="store_true")

    def handle(
        self, *args, slug, since=None, after_seq=0, no_record=False, format="jsonl", **options
    ):
        workspace = workspace_model().objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r}.")
        try:
            since_at = parse_when(since, "since")
        except WardenError as exc:
            raise CommandError(f"--since: {exc.detail['since'][0]}") from None
        audit_seal_pending(workspace)  # queued entries join the chain first
        encode_line = encoder(format, workspace_slug=workspace.slug)
        out = self.stdout._out
        bar = ProgressBar(self.stderr, label=f"export {slug}")
        if bar.enabled:
            bar.total = export_count(workspace, after_seq=after_seq, since=since_at)
        written, first_seq, last_seq, buffer = 0, None, None, []
        for row in iter_export_rows(workspace, after_seq=after_seq, since=since_at):
            buffer.append(encode_line(row))
            written += 1
            if first_seq is None:
                first_seq = row["seq"]
            last_seq = row["seq"]
            if len(buffer) >= FLUSH_EVERY:
                out.write("".join(buffer))
                buffer.clear()
                bar.update(written)
        out.write("".join(buffer))
        out.flush()
        bar.finish()
        if not no_record:
            audit_record_export(
                workspace=workspace,
                actor=Actor.system("audit_export"),
                entries=written,
                first_seq=first_seq,
                last_seq=last_seq,
                destination="stdout",
            )
        self.stderr.write(f"exported {written:,} entries (#{first_seq}..#{last_seq})")
