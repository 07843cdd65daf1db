"""Which database errors are the database's momentary state rather than a bug.

A lock wait that ran out, a PostgreSQL serialization failure or deadlock, a server that
restarted under an open connection: the transaction was rolled back whole, and the same
request is worth repeating a moment later. The API answers these `503 unavailable` with
Retry-After (docs: "Contention and faults"); everything else stays a 500, so a real
defect (a missing table, bad SQL) is never disguised as "try again".
"""

import sqlite3

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from psycopg.postgres import types as pg_types
from psycopg.pq import Format

# SQLite reports every failure as OperationalError; only these mean "busy".
_SQLITE_BUSY_MARKERS = ("database is locked", "database table is locked", "database is busy")
TIMESTAMPTZ_OID = pg_types["timestamptz"].oid


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


def prepared_cursor(connection):
    """A cursor (Django's wrapper: logged and counted like any other) whose statements
    PostgreSQL parses and plans once per connection and then runs from the prepared
    plan (server-side binding, `prepare=True`). For the few fixed statements every
    request runs (the key lookup, the decision's writes): planning the key lookup took
    three times as long as running it. Django's own cursors bind on the client, so
    PostgreSQL plans each of their statements anew. A plain cursor on SQLite and when
    prepared statements are off (settings: DB_PREPARED_STATEMENTS)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:  # DB_PREPARED_STATEMENTS=0
        return connection.cursor()
    cursor = _PreparedCursor(connection.connection)
    tzloader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if connection.timezone != tzloader.timezone:
        register_tzloader(connection.timezone, cursor)
    connection.validate_thread_sharing()
    if connection.queries_logged:
        return _PreparedDebugWrapper(cursor, connection)
    return connection.make_cursor(cursor)


class _PreparedCursor(psycopg.Cursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Logs (DEBUG, tests' query counts) the statement with its values, as Django's own
    cursor does: psycopg keeps no statement text for a prepared execution."""

    def execute(self, sql, params=None):
        try:
            shown = self.db.ops.compose_sql(sql, params)
        except Exception:  # the statement itself reports the error
            shown = sql
        with self.debug_sql(shown, params):
            return CursorWrapper.execute(self, sql, params)
