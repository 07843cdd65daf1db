"""`python manage.py audit_replay ACTION_ID`: the recorded action's decision under
the policy of its time and under today's, side by side (oversight/replay.py)."""

import json
from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError

from common.errors import WardenError
from oversight.replay import render_side_by_side, replay_action


class Command(BaseCommand):
    help = "Re-run decide() for a recorded action with its policy version and with today's."

    def add_arguments(self, parser):
        parser.add_argument("action_id")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="machine-readable output"
        )

    def handle(self, *args, action_id, as_json=False, **options):
        try:
            report = replay_action(action_id)
        except WardenError as exc:
            raise CommandError(exc.message) from None
        if as_json:
            data = asdict(report)
            data["changed"] = report.changed
            data["matches_record"] = report.matches_record
            self.stdout.write(_dumps(data))
        else:
            self.stdout.write(render_side_by_side(report))


def _dumps(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)
