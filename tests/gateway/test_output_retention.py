"""The output Warden observes upstream: digest and size always, a plain copy kept for
the workspace's plain-copy period (then pruned, audited, the chain intact)."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.guard import operator_seeding
from approvals.minimisation import plain_copies_prune
from audit.models import AuditEntry
from audit.verify import verify_chain
from common.actor import Actor
from gateway.models import Execution
from tenants.models import Workspace

pytestmark = pytest.mark.django_db


def _execute(client, tool, params):
    body = {"tool": tool, "params": params, "execute": True}
    return client.post("/api/v1/actions", body, format="json")


def _digest(value) -> str:
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


def test_the_observed_output_is_copied_with_its_digest(synced, gw_agent):
    _, client, _ = gw_agent
    response = _execute(client, "crm.lookup", {"customer_id": 7})
    assert response.status_code == 200, response.json()
    execution = Execution.objects.get()
    assert execution.observed_output == response.json()["result"]
    assert execution.output_sha256 == _digest(execution.observed_output)
    assert execution.output_bytes > 0 and execution.output_pruned_at is None


def test_the_copy_is_pruned_after_the_period_and_the_digest_stays(synced, gw_agent, gw_workspace):
    _, client, _ = gw_agent
    _execute(client, "crm.lookup", {"customer_id": 7})
    execution = Execution.objects.get()
    sha, size = execution.output_sha256, execution.output_bytes
    later = timezone.now() + timedelta(days=31)
    result = plain_copies_prune(workspace=gw_workspace, actor=Actor.system("retention"), now=later)
    assert result.pruned["executions"] == 1
    execution.refresh_from_db()
    assert execution.observed_output is None and execution.output_pruned_at is not None
    assert (execution.output_sha256, execution.output_bytes) == (sha, size)
    entry = AuditEntry.objects.get(workspace=gw_workspace, action="data.plain_copies_pruned")
    assert entry.input["executions"] == [str(execution.pk)]
    assert verify_chain(gw_workspace).ok


def test_within_the_period_the_copy_is_kept(synced, gw_agent, gw_workspace):
    _, client, _ = gw_agent
    _execute(client, "crm.lookup", {"customer_id": 7})
    soon = timezone.now() + timedelta(days=29)
    plain_copies_prune(workspace=gw_workspace, actor=Actor.system("retention"), now=soon)
    assert Execution.objects.get().observed_output is not None


def test_a_workspace_keeping_no_plain_copies_stores_only_the_digest(synced, gw_agent, gw_workspace):
    with operator_seeding():  # set-up: a shorter plain-copy period is governed
        Workspace.objects.filter(pk=gw_workspace.pk).update(plain_copy_retention_days=0)
    _, client, _ = gw_agent
    response = _execute(client, "crm.lookup", {"customer_id": 7})
    assert response.status_code == 200
    assert response.json()["result"]  # the agent still gets the upstream's answer
    execution = Execution.objects.get()
    assert execution.observed_output is None and execution.output_sha256 and execution.output_bytes


def test_an_output_too_large_to_copy_keeps_digest_and_size_only(synced, gw_agent, monkeypatch):
    monkeypatch.setattr("approvals.minimisation.MAX_OUTPUT_COPY_BYTES", 10)
    _, client, _ = gw_agent
    assert _execute(client, "crm.lookup", {"customer_id": 7}).status_code == 200
    execution = Execution.objects.get()
    assert execution.observed_output is None and execution.output_bytes > 10
