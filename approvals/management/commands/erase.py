"""Erase personal data by crypto-shredding (approvals/erasure.py):

    python manage.py erase SLUG --request ID [--request ID ...] --reason "..."
    python manage.py erase SLUG --subject - --reason "..." < value.txt
    python manage.py erase SLUG --seal-existing

`--subject -` reads the subject's value from stdin, so it stays out of the shell's
history. `--by NAME` names the operator in the audit entry (`system:erase:NAME`, as
given: a shell is not a login); without it the entry names `system:erase`.
`--seal-existing` moves the plain copies of rows written before sealing into the sealed
store (docs/compliance/erasure.md)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from approvals.erasure import personal_data_erase, personal_data_seal
from common.actor import Actor
from common.errors import WardenError
from tenants.models import Workspace


class Command(BaseCommand):
    help = "Erase a data subject's or a request's personal data (destroys their data keys)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--request", action="append", default=[], dest="requests")
        parser.add_argument("--subject", default="", help="The value, or - to read stdin.")
        parser.add_argument("--reason", default="")
        parser.add_argument("--by", default="", help="Who runs it (recorded as given).")
        parser.add_argument("--seal-existing", action="store_true")

    def handle(self, *args, slug, requests, subject, reason, by, seal_existing, **options):
        workspace = Workspace.objects.active().filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r}.")
        # A shell operator is not an authenticated user: the name is recorded as given.
        actor = Actor.system(f"erase:{by[:100]}" if by else "erase")
        if seal_existing:
            sealed = personal_data_seal(workspace=workspace, actor=actor)
            self.stdout.write(
                f"{slug}: sealed {sealed.action_requests} request(s), "
                f"{sealed.confirmations} summary(ies); {sealed.entries_with_plain_values} "
                "audit entr(ies) from before still quote values (see the docs)"
            )
            return
        if subject == "-":
            subject = sys.stdin.readline().rstrip("\n")
        try:
            result = personal_data_erase(
                workspace=workspace,
                actor=actor,
                reason=reason,
                action_ids=requests,
                subject=subject,
            )
        except WardenError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        copies = ", ".join(f"{n} {name}" for name, n in sorted(result.copies.items()) if n)
        self.stdout.write(
            f"{slug}: erased {len(result.action_requests)} request(s)"
            + (f" and {copies}" if copies else "")
        )
