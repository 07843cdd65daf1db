"""Migration approvals.0006: the HTTP answer a request row kept becomes its outcome, and
back. A retry of a request recorded before the migration still replays its first
answer, byte for byte."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("approvals", "0005_plain_copy_retention")]
AFTER = [("approvals", "0006_action_outcome")]

pytestmark = pytest.mark.django_db(transaction=True)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_kept_answers_become_outcomes_and_replay_the_first_answer(
    live_workspace, agent, make_tool, ask
):
    _, client = agent
    make_tool(live_workspace, "crm.lookup")
    make_tool(live_workspace, "crm.update_stage", level="write", confirmation="always")
    calls = {"allowed": "crm.lookup", "denied": "crm.nope", "pending": "crm.update_stage"}
    first = {case: ask(client, tool, idempotency_key=case) for case, tool in calls.items()}

    old = _migrate(BEFORE)  # backwards: each row holds the answer it was given
    kept = {
        row.idempotency_key: (row.response_status, row.response)
        for row in old.get_model("approvals", "ActionRequest").objects.all()
    }
    for case, answer in first.items():
        body = answer.json()
        if case == "pending":
            body["confirmation_token"] = None  # never stored
        assert kept[case] == (answer.status_code, body)

    _migrate(AFTER)
    # Back to the newest migrations: later tests need the whole schema.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    for case, tool in calls.items():
        again = ask(client, tool, idempotency_key=case)
        assert (again.status_code, again.content) == (first[case].status_code, first[case].content)
