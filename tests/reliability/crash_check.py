"""What tests/reliability/test_crash_sealer.py checks after its kills, run in a subprocess
with the server's environment (its database, its audit signing key):
`python -m tests.reliability.crash_check WORKSPACE_SLUG < answered-ids.json`.
Read-only: it seals nothing itself (audit_verify would seal the queue first)."""

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from approvals.models import ActionRequest
    from audit.models import AuditEntry, AuditPending, AuditQuarantine
    from audit.verify import verify_chain
    from tenants.models import Workspace

    workspace = Workspace.objects.get(slug=sys.argv[1])
    answered = set(json.load(sys.stdin))
    stored = {
        str(pk)
        for pk in ActionRequest.objects.filter(workspace=workspace).values_list("pk", flat=True)
    }
    chained = {
        target
        for target, seq in AuditEntry.objects.filter(
            workspace=workspace, action="action.decided"
        ).values_list("target_id", "seq")
        if seq is not None
    }
    result = verify_chain(workspace)
    print(
        json.dumps(
            {
                "missing_requests": sorted(answered - stored),
                "missing_entries": sorted(answered - chained),
                "chain_ok": result.ok,
                "summary": result.summary(),
                "entries_checked": result.entries_checked,
                "queued": AuditPending.objects.filter(workspace=workspace).count(),
                "quarantined": AuditQuarantine.objects.filter(workspace=workspace).count(),
            }
        )
    )


if __name__ == "__main__":
    main()
