"""The audit columns are declared once (audit.columns): the chain entry, the queued
entry and every list of entry columns agree, so a column added there reaches them all."""

from audit.chain import CHAINED_FIELDS, PENDING_FIELDS
from audit.columns import ENTRY_COLUMNS, UNCHAINED_COLUMNS
from audit.models import AuditEntry, AuditPending


def _columns(model, *own):
    return {f.name for f in model._meta.concrete_fields} - {"id", "workspace", "mac", *own}


def test_the_chain_entry_and_the_queued_entry_hold_exactly_the_declared_columns():
    assert _columns(AuditEntry, "seq", "prev_hash", "hash") == set(ENTRY_COLUMNS)
    assert _columns(AuditPending) == set(ENTRY_COLUMNS)


def test_what_is_chained_and_what_the_queue_mac_covers_come_from_the_declaration():
    assert ("workspace", *ENTRY_COLUMNS) == PENDING_FIELDS
    assert set(CHAINED_FIELDS) == {"workspace", "seq", *ENTRY_COLUMNS} - UNCHAINED_COLUMNS
