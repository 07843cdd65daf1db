"""Small SQL builders for hot paths, derived from model metadata once per process."""

from __future__ import annotations

from functools import cache

from django.db import models, transaction


@cache
def _insert_template(model: type[models.Model], vendor: str, quote) -> tuple[str, tuple]:
    fields = tuple(
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))
    )
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = quote(model._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 (metadata)
    return sql, fields


_SELECT_TEMPLATES: dict[tuple, str] = {}


def _insert_select_template(model: type[models.Model], connection) -> str:
    """The INSERT ... SELECT head and its cast value list (all but the WHERE), built once
    per model and backend: deriving each column's cast type costs more than the rest
    of a decision's SQL building."""
    cache_key = (model, connection.vendor)
    template = _SELECT_TEMPLATES.get(cache_key)
    if template is None:
        sql, fields = _insert_template(model, connection.vendor, connection.ops.quote_name)
        head, _ = sql.split(" VALUES (", 1)
        casts = ", ".join(f"%s::{f.cast_db_type(connection)}" for f in fields)
        template = _SELECT_TEMPLATES[cache_key] = f"{head} SELECT {casts} WHERE "
    return template


def insert_statement(obj: models.Model, connection) -> tuple[str, list]:
    """(sql, params) inserting `obj` as `obj.save(force_insert=True)` would (defaults
    and pre_save applied, values prepared for the backend), without the ORM's per-call
    query compilation, so the statement can ride inside another (a data-modifying CTE).
    Auto-increment primary keys are left to the database (not returned)."""
    sql, fields = _insert_template(type(obj), connection.vendor, connection.ops.quote_name)
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    return sql, params


def insert_select_statement(obj: models.Model, connection, where: str) -> tuple[str, list]:
    """Like `insert_statement`, as `INSERT ... SELECT <values> WHERE <where>`: a
    conditional insert (for a data-modifying CTE). Every value is cast to its column's
    type, since a SELECT list does not take its types from the target columns."""
    _, params = insert_statement(obj, connection)
    return _insert_select_template(type(obj), connection) + where, params


def insert_once(obj: models.Model) -> bool:
    """Insert `obj` unless a unique constraint already holds its twin; True when this
    call inserted it. One statement, and a conflict leaves the surrounding transaction
    usable (no savepoint, no IntegrityError to catch)."""
    connection = transaction.get_connection()
    sql, values = insert_statement(obj, connection)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ON CONFLICT DO NOTHING RETURNING 1", values)
        inserted = cursor.fetchone() is not None
    if inserted:
        obj._state.adding, obj._state.db = False, connection.alias
    return inserted
