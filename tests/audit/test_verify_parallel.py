"""The parallel walk of long chains (PostgreSQL): forked processes verify segments in
the verifier's exported snapshot. It only ever says "intact"; on any finding the
serial walk names the first bad entry, so verdicts are the same either way."""

import pytest
from django.db import connection

from audit import verify
from audit.checkpoints import checkpoint_every
from audit.models import AuditChainHead
from audit.services import checkpoint_create
from audit.verify import BROKEN_LINK, FORGED_ENTRY, HASH_MISMATCH, verify_chain
from tests.audit.helpers import append, db_id, on_postgres
from tests.audit.helpers import tamper as _tamper_with_triggers

pytestmark = [on_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def tamper(sql, params):
    """As tests.audit.helpers.tamper; then the truncate guard is switched off again, as
    the session set-up has it, so that this transactional test's flush can run."""
    _tamper_with_triggers(sql, params)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_auditentry_no_truncate")


@pytest.fixture
def parallel(monkeypatch, settings):
    """Every chain counts as long; three segments; records what the fast path said."""
    settings.WARDEN_AUDIT_VERIFY_WORKERS = 3
    monkeypatch.setattr(verify, "PARALLEL_MIN_ENTRIES", 1)
    said = []
    real = verify._parallel_walk

    def spy(*args, **kwargs):
        said.append(real(*args, **kwargs))
        return said[-1]

    monkeypatch.setattr(verify, "_parallel_walk", spy)
    return said


def _head(workspace):
    return AuditChainHead.objects.get(workspace=workspace)


@pytest.fixture
def chain(workspace):
    append(workspace, 30)
    return workspace


def test_an_intact_chain_is_walked_in_parallel(chain, parallel):
    result = verify_chain(chain)
    assert result.ok and result.entries_checked >= 30
    assert parallel == [_head(chain).hash]  # the fast path vouched for the whole chain


def test_a_signed_chain_with_macs_after_the_checkpoint(chain, parallel, settings):
    settings.WARDEN_AUDIT_CHECKPOINT_EVERY = 10_000
    assert checkpoint_every() == 10_000
    assert checkpoint_create(workspace=chain) is not None
    append(chain, 12)  # MACs required from here
    assert verify_chain(chain).ok and parallel[-1] is not None


@pytest.mark.parametrize("where", [2, 15, 29])  # first, middle, last segment
def test_an_edited_entry_is_named_as_the_serial_walk_names_it(chain, parallel, where):
    tamper(
        "UPDATE audit_auditentry SET rationale = 'edited' WHERE workspace_id = %s AND seq = %s",
        [db_id(chain), where],
    )
    result = verify_chain(chain)
    assert parallel == [None]  # the fast path found something ...
    assert (result.ok, result.first_bad_seq, result.problem) == (False, where, HASH_MISMATCH)


def test_a_cut_between_segments_is_still_checked(chain, parallel):
    """A broken link exactly where two segments meet (each segment is intact alone)."""
    total = _head(chain).seq
    cut = 1 + total // 3 + 1  # first entry of the second segment
    tamper(
        "UPDATE audit_auditentry SET prev_hash = %s WHERE workspace_id = %s AND seq = %s",
        ["f" * 64, db_id(chain), cut],
    )
    result = verify_chain(chain)
    assert parallel == [None]
    assert (result.first_bad_seq, result.problem) in ((cut, BROKEN_LINK), (cut, HASH_MISMATCH))


def test_a_missing_mac_after_a_checkpoint_is_forged(chain, parallel, settings):
    settings.WARDEN_AUDIT_CHECKPOINT_EVERY = 10_000
    checkpoint_create(workspace=chain)
    append(chain, 9)
    seq = _head(chain).seq - 1
    tamper(
        "UPDATE audit_auditentry SET mac = '' WHERE workspace_id = %s AND seq = %s",
        [db_id(chain), seq],
    )
    result = verify_chain(chain)
    assert parallel == [None]
    assert (result.first_bad_seq, result.problem) == (seq, FORGED_ENTRY)


def test_inside_an_outer_transaction_the_walk_stays_serial(chain, parallel):
    from django.db import transaction

    with transaction.atomic():
        assert verify_chain(chain).ok
    assert parallel == []
    assert connection.vendor == "postgresql"
