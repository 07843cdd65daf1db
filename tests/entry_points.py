"""Registry of entry-point tests (DESIGN.md principle 14): management commands, Celery
tasks and admin actions run as they run in production, outside any test transaction,
so a missing `transaction.atomic` fails a test instead of passing inside the test's own.

`@entry_point("command:createkey", "task:audit.prune_all", "admin:keys.machinekey.revoke_selected")`
marks a test `django_db(transaction=True)` and records what it covers;
tests/test_entry_points.py fails when an entry point has no such test."""

from __future__ import annotations

import pytest

# Modules holding @entry_point tests (the meta-test imports them).
MODULES = (
    "tests.test_entry_points",
    "tests.test_admin_views_real",
    "tests.notifications.test_entry_points",
    "tests.gateway.test_entry_points",
    "tests.notifications.test_escalation",
    "tests.notifications.test_slack",
    "tests.approvals.test_policy_entry_points",
    "tests.notifications.test_digest",
    "tests.notifications.test_email_buttons",
    "tests.oversight.test_unreported_results",
    "tests.oversight.test_replay_run",
    "tests.approvals.test_erasure",
)


def entry_point(*names: str):
    def mark(func):
        func = pytest.mark.django_db(transaction=True)(func)
        func.entry_points = names
        return func

    return mark
