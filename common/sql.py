"""Small SQL builders for hot paths, derived from model metadata once per process."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connections, models, transaction

from common.db import prepared_cursor
from common.guarded import is_guarded


def _unguarded(model: type[models.Model]) -> type[models.Model]:
    """These statements skip model signals and GuardedQuerySet: never for a model whose
    writes the governance guard must see (approvals.guard)."""
    if is_guarded(model):
        raise TypeError(f"{model._meta.label} is governed: write it through the ORM")
    return model


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
    model = _unguarded(type(obj))
    sql, fields = _insert_template(model, connection.vendor, connection.ops.quote_name)
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


@dataclass(frozen=True)
class SelectedModel:
    """A model's concrete columns in a hand-written SELECT (under a table alias) and
    how to turn them back into the instance the ORM would have returned: for the few
    reads every request runs, where building and compiling the ORM query costs several
    times what the database takes to answer it."""

    model: type[models.Model]
    columns: tuple[str, ...]  # "alias"."column", in concrete field order
    attnames: tuple[str, ...]
    converters: tuple[tuple[Any, tuple], ...]  # (column expression, converters)

    def load(self, row: Sequence, start: int, using: str) -> models.Model:
        """The instance from row[start : start + len(columns)]."""
        connection = connections[using]
        values = list(row[start : start + len(self.columns)])
        for i, (col, found) in enumerate(self.converters):
            for converter in found:
                values[i] = converter(values[i], col, connection)
        return self.model.from_db(using, self.attnames, values)


@cache
def selected_model(model: type[models.Model], alias: str, using: str) -> SelectedModel:
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    converters = []
    for field in fields:
        col = field.get_col(alias)
        found = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        converters.append((col, tuple(found)))
    return SelectedModel(
        model=model,
        columns=tuple(f"{alias}.{quote(f.column)}" for f in fields),
        attnames=tuple(f.attname for f in fields),
        converters=tuple(converters),
    )


@cache
def _update_template(model: type[models.Model], names: tuple[str, ...], using: str):
    quote = connections[using].ops.quote_name
    fields = tuple(model._meta.get_field(name) for name in names)
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    return f"UPDATE {table} SET {assignments} WHERE {pk} = %s", fields  # noqa: S608


def _update_statement(model, pk, values: dict, connection) -> tuple[str, list]:
    sql, fields = _update_template(_unguarded(model), tuple(values), connection.alias)
    params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
    params.append(model._meta.pk.get_db_prep_value(pk, connection))
    return sql, params


def _execute_opening(connection, sql: str, params: list) -> int:
    """Execute (prepared); the rows changed. Pipelined on PostgreSQL: when the statement
    opens the transaction, the BEGIN the driver sends first shares its round trip (as
    audit.services._lock_head does)."""
    connection.ensure_connection()
    pipelined = connection.connection.pipeline() if connection.vendor == "postgresql" else None
    with (
        connection.wrap_database_errors,
        pipelined or nullcontext(),
        prepared_cursor(connection) as cursor,
    ):
        cursor.execute(sql, params)
    return cursor.rowcount


def update_row(
    model: type[models.Model],
    pk: Any,
    values: dict[str, Any],
    *,
    where: str = "",
    where_params: Sequence[Any] = (),
    along: tuple[type[models.Model], Any, dict[str, Any]] | None = None,
    using: str = "default",
) -> int:
    """`model.objects.filter(pk=pk, <where>).update(**values)` as one prepared statement
    built once per model and field set; the number of rows changed. `where`: more SQL
    conditions on the row (columns by name), with their parameters. `along`: (model,
    pk, values) of another row to update unconditionally, in the same statement on
    PostgreSQL (a data-modifying CTE), in one just before it elsewhere."""
    connection = connections[using]
    sql, params = _update_statement(model, pk, values, connection)
    if where:
        sql = f"{sql} AND {where}"
        params.extend(where_params)
    if along is not None:
        along_sql, along_params = _update_statement(*along, connection)
        if connection.vendor == "postgresql":
            sql, params = f"WITH along AS ({along_sql}) {sql}", [*along_params, *params]
        else:
            _execute_opening(connection, along_sql, along_params)
    return _execute_opening(connection, sql, params)
