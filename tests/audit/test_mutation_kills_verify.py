"""Tests written to kill surviving mutants of audit/verify.py (docs/mutation.md).

`VerifyResult.summary()` is the line `audit_verify` prints and `as_dict()` the JSON it
writes (and the audit API returns): an operator and a monitoring check read them, so
every part of them is asserted. Pure: no database.
"""

import pytest

from audit.verify import VerifyResult

pytestmark = pytest.mark.db_independent


def test_the_summary_of_an_intact_chain_names_its_queue_and_quarantine():
    assert VerifyResult(ok=True, entries_checked=3).summary() == "chain intact: 3 entries checked"
    queued = VerifyResult(ok=True, entries_checked=3, pending=2, pending_age_seconds=1.26)
    assert queued.summary() == "chain intact: 3 entries checked; 2 queued, valid, oldest 1.3 s"
    held = VerifyResult(ok=True, entries_checked=3, quarantined=1)
    assert held.summary() == "chain intact: 3 entries checked; 1 row(s) in quarantine"


def test_the_summary_of_a_broken_chain_names_the_entry_problem_and_detail():
    broken = VerifyResult(ok=False, entries_checked=4, first_bad_seq=4, problem="gap")
    assert broken.summary() == "chain broken at #4: gap"
    detailed = VerifyResult(
        ok=False, entries_checked=4, first_bad_seq=4, problem="gap", detail="seq 6", quarantined=2
    )
    assert detailed.summary() == "chain broken at #4: gap (seq 6); 2 row(s) in quarantine"


def test_the_json_report_rounds_its_times_and_keeps_every_field():
    result = VerifyResult(
        ok=True, entries_checked=10, seconds=0.12345678, pending=1, pending_age_seconds=2.34567
    )
    data = result.as_dict()
    assert data["seconds"] == 0.123457 and data["pending_age_seconds"] == 2.346
    assert data["ok"] is True and data["entries_checked"] == 10 and data["pending"] == 1
    assert result.entries_per_second == pytest.approx(10 / 0.12345678)
    assert VerifyResult(ok=True, entries_checked=10).entries_per_second == 0.0
