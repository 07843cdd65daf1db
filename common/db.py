"""Which database errors are the database's momentary state rather than a bug.

A lock wait that ran out, a PostgreSQL serialization failure or deadlock, a server that
restarted under an open connection: the transaction was rolled back whole, and the same
request is worth repeating a moment later. The API answers these `503 unavailable` with
Retry-After (README: "Contention and faults"); everything else stays a 500, so a real
defect (a missing table, bad SQL) is never disguised as "try again".
"""

import sqlite3

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError

# SQLite reports every failure as OperationalError; only these mean "busy".
_SQLITE_BUSY_MARKERS = ("database is locked", "database table is locked", "database is busy")


def is_transient_db_error(exc: BaseException) -> bool:
    """True for lock timeouts, serialization failures, deadlocks and lost connections."""
    if isinstance(exc, InterfaceError | psycopg.InterfaceError):
        return True  # the connection is gone (server restart, network)
    if isinstance(exc, psycopg.OperationalError):
        return True  # connection loss, serialization failure, deadlock, lock timeout
    if isinstance(exc, sqlite3.OperationalError):
        return any(marker in str(exc) for marker in _SQLITE_BUSY_MARKERS)
    if isinstance(exc, OperationalError):
        cause = exc.__cause__
        return cause is not None and is_transient_db_error(cause)
    return False


def retry_after_seconds() -> int:
    return max(1, int(settings.WARDEN_RETRY_AFTER_SECONDS))
