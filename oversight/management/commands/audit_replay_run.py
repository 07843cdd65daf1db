"""`python manage.py audit_replay_run --key KEY_ID [--since ..] [--until ..]` or `--trace ID`:
a recorded run replayed in order under the policy of its time and today's, against
the recorded outputs, with each divergence (oversight/replay.py)."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.selectors import parse_when
from common.errors import WardenError
from keys.models import MachineKey
from oversight.replay import MAX_RUN_STEPS, render_run, replay_run, run_actions, trace_id_of
from tenants.models import Workspace


class Command(BaseCommand):
    help = (
        "Replay a recorded run (a key's calls in a time window, or an OpenTelemetry trace) "
        "under the policy of the time and today's, and report each divergence."
    )

    def add_arguments(self, parser):
        parser.add_argument("--key", help="the machine key's id: its calls, oldest first")
        parser.add_argument("--since", help="ISO 8601 date or timestamp (created_at >= since)")
        parser.add_argument("--until", help="ISO 8601 date or timestamp (created_at < until)")
        parser.add_argument(
            "--trace",
            help="a trace id (32 hex) or a W3C traceparent: the calls that waited for a "
            "human inside that trace",
        )
        parser.add_argument("--workspace", help="slug: only this workspace's calls")
        parser.add_argument(
            "--limit", type=int, default=MAX_RUN_STEPS, help=f"at most (default {MAX_RUN_STEPS})"
        )
        parser.add_argument("--format", choices=("text", "json"), default="text")
        parser.add_argument(
            "--fail-on-divergence",
            action="store_true",
            help="exit with status 1 when any step diverges (the report is printed first)",
        )

    def handle(self, *args, **options):
        key_id, trace = options.get("key"), options.get("trace")
        if not key_id and not trace:
            raise CommandError("Give --key (with --since/--until) or --trace.")
        workspace = None
        if options.get("workspace"):
            workspace = Workspace.objects.filter(slug=options["workspace"]).first()
            if workspace is None:
                raise CommandError(f"No workspace with slug {options['workspace']!r}.")
        trace_id = ""
        if trace:
            trace_id = trace_id_of(trace)
            if not trace_id:
                raise CommandError("--trace: not a trace id (32 hex digits) or a traceparent.")
        key = None
        if key_id:
            try:
                key = MachineKey.objects.filter(pk=key_id).first()
            except (ValidationError, ValueError):
                key = None
            if key is None or (workspace is not None and key.workspace_id != workspace.pk):
                raise CommandError(f"No machine key {key_id}.")
        try:
            since = parse_when(options.get("since"), "since")
            until = parse_when(options.get("until"), "until")
        except WardenError as exc:
            raise CommandError(f"{exc.message} {exc.detail}") from None
        if not 1 <= options["limit"] <= MAX_RUN_STEPS:
            raise CommandError(f"--limit: 1 to {MAX_RUN_STEPS}.")
        actions = run_actions(
            workspace=workspace,
            key_id=key.pk if key else None,
            since=since,
            until=until,
            trace_id=trace_id,
            limit=options["limit"],
        )
        run = {
            "key": str(key.pk) if key else "",
            "trace_id": trace_id,
            "workspace": workspace.slug if workspace else "",
            "since": since.isoformat() if since else "",
            "until": until.isoformat() if until else "",
        }
        report = replay_run(actions, run=run)
        if options["format"] == "json":
            self.stdout.write(json.dumps(report.as_dict(), indent=2, sort_keys=True, default=str))
        else:
            self.stdout.write(render_run(report))
        if options["fail_on_divergence"] and report.divergences:
            raise CommandError(
                f"{report.divergences} divergence(s), first at #{report.first_divergence}",
                returncode=1,
            )
