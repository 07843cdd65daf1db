"""The model-level guard behind the door: no write path may loosen governance alone.

Every save, delete and bulk update of a governed model is compared with the row as
stored, on every field that is not inert (approvals.effective: closed world); if the
change amounts to a governed operation (approvals.governance) and the
door has not granted it (an approved request, or an operator's break-glass), the
write is refused with `approval_required`. New screens, commands and tasks therefore
cannot forget the rule: the test suite walks every write path and fails on a bypass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models.signals import pre_delete, pre_save

from approvals import effective
from approvals.governance import ALL_NAMES, Target, inert, loosening
from common.errors import WardenError
from common.guarded import register_update_guard

SnapshotFn = Callable[[models.Model], dict[str, Any]]


@dataclass(frozen=True)
class Grant:
    """Permission from the door to apply `operations` to one target (pk None: a row
    being created)."""

    target: str
    pk: str | None
    operations: frozenset[str]


_GRANTS: ContextVar[tuple[Grant, ...]] = ContextVar("warden_governance_grants", default=())
_REGISTRY: dict[type[models.Model], tuple[Target, SnapshotFn]] = {}


@contextlib.contextmanager
def granted(grant: Grant) -> Iterator[None]:
    """Within this block the door's grant lets the named loosening through."""
    token = _GRANTS.set((*_GRANTS.get(), grant))
    try:
        yield
    finally:
        _GRANTS.reset(token)


@contextlib.contextmanager
def operator_seeding() -> Iterator[None]:
    """For code an operator runs at a shell to seed data (the demo loader, test set-up):
    every governed write passes. Never reachable from a request or a task."""
    with contextlib.ExitStack() as stack:
        for target in Target:
            stack.enter_context(granted(Grant(str(target), None, ALL_NAMES)))
        yield


# A grant's pk for creating rows only (never a change to an existing row).
NEW_ROWS = "<new rows>"


def _covered(target: Target, pk: Any, operations: list) -> bool:
    names = {op.name for op in operations}
    key = None if pk is None else str(pk)
    for grant in _GRANTS.get():
        rows = grant.pk in (None, key) or (grant.pk == NEW_ROWS and key is None)
        if grant.target == target and rows and names <= grant.operations:
            return True
    return False


def approval_required(operations: list) -> WardenError:
    return WardenError(
        "approval_required",
        "This change loosens governance; it needs a human's approval through the "
        "governed-operation door.",
        {"operations": [op.name for op in operations]},
    )


def check(target: Target, pk: Any, before: dict | None, after: dict | None) -> None:
    operations = loosening(target, before, after)
    if operations and not _covered(target, pk, operations):
        raise approval_required(operations)


def snapshot(instance: models.Model) -> dict[str, Any]:
    """What the guard and the door compare: every classified field of the row
    (approvals.effective), overlaid with the model's own snapshot for people."""
    target, snap = _REGISTRY[type(instance)]
    return {**field_values(instance, target), **snap(instance)}


def field_values(instance: models.Model, target: Target | str) -> dict[str, Any]:
    """Every concrete field that is not inert, as JSON (foreign keys as their id)."""
    skip = inert(target)
    values = {}
    for field in instance._meta.concrete_fields:
        if field.name in skip:
            continue
        values[field.name] = effective.json_value(field.value_from_object(instance))
    return values


def _stored(instance: models.Model) -> models.Model | None:
    if instance.pk is None:
        return None
    return type(instance)._base_manager.filter(pk=instance.pk).first()


def _on_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw:  # fixtures / loaddata
        return
    target, _ = _REGISTRY[sender]
    if update_fields is not None and set(update_fields) <= inert(target):
        return
    stored = None if instance._state.adding else _stored(instance)
    before = snapshot(stored) if stored is not None else None
    check(target, None if before is None else instance.pk, before, snapshot(instance))


def _on_delete(sender, instance, **kwargs) -> None:
    target, _ = _REGISTRY[sender]
    stored = _stored(instance)
    if stored is not None:
        check(target, instance.pk, snapshot(stored), None)


def _on_update(queryset: models.QuerySet, changes: dict[str, Any]) -> None:
    target, _ = _REGISTRY[queryset.model]
    if set(changes) <= inert(target):
        return
    for row in queryset:
        before = snapshot(row)
        for field, value in changes.items():
            setattr(row, queryset.model._meta.get_field(field).attname, value)
        check(target, row.pk, before, snapshot(row))


def registered_model(target: Target | str) -> type[models.Model] | None:
    """The model registered for `target` (a higher layer's, e.g. the automation
    settings), so lower code can read it without importing its app."""
    for model, (registered, _) in _REGISTRY.items():
        if str(registered) == str(target):
            return model
    return None


def register(model: type[models.Model], target: Target, snapshot_fn: SnapshotFn) -> None:
    """Put `model` under the guard (called from AppConfig.ready of the owning layer)."""
    _REGISTRY[model] = (target, snapshot_fn)
    uid = f"warden.guard.{model._meta.label}"
    pre_save.connect(_on_save, sender=model, dispatch_uid=f"{uid}.save")
    pre_delete.connect(_on_delete, sender=model, dispatch_uid=f"{uid}.delete")
    if isinstance(model._default_manager.get_queryset(), models.QuerySet):
        register_update_guard(model, _on_update)
