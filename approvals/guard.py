"""The model-level guard behind the door: no write path may loosen governance alone.

Every save, delete and bulk update of a governed model is compared with the row as
stored; if the change amounts to a governed operation (approvals.governance) and the
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

from approvals.governance import BY_NAME, GOVERNED_FIELDS, Target, loosening
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
            stack.enter_context(granted(Grant(str(target), None, frozenset(BY_NAME))))
        yield


def _covered(target: Target, pk: Any, operations: list) -> bool:
    names = {op.name for op in operations}
    key = None if pk is None else str(pk)
    for grant in _GRANTS.get():
        if grant.target == target and grant.pk in (None, key) and names <= grant.operations:
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
    return _REGISTRY[type(instance)][1](instance)


def _stored(instance: models.Model) -> models.Model | None:
    if instance.pk is None:
        return None
    return type(instance)._base_manager.filter(pk=instance.pk).first()


def _on_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw:  # fixtures / loaddata
        return
    target, snap = _REGISTRY[sender]
    if update_fields is not None and not set(update_fields) & GOVERNED_FIELDS[target]:
        return
    stored = None if instance._state.adding else _stored(instance)
    before = snap(stored) if stored is not None else None
    check(target, None if before is None else instance.pk, before, snap(instance))


def _on_delete(sender, instance, **kwargs) -> None:
    target, snap = _REGISTRY[sender]
    stored = _stored(instance)
    if stored is not None:
        check(target, instance.pk, snap(stored), None)


def _on_update(queryset: models.QuerySet, changes: dict[str, Any]) -> None:
    target, snap = _REGISTRY[queryset.model]
    if not set(changes) & GOVERNED_FIELDS[target]:
        return
    for row in queryset:
        before = snap(row)
        for field, value in changes.items():
            setattr(row, queryset.model._meta.get_field(field).attname, value)
        check(target, row.pk, before, snap(row))


def register(model: type[models.Model], target: Target, snapshot_fn: SnapshotFn) -> None:
    """Put `model` under the guard (called from AppConfig.ready of the owning layer)."""
    _REGISTRY[model] = (target, snapshot_fn)
    uid = f"warden.guard.{model._meta.label}"
    pre_save.connect(_on_save, sender=model, dispatch_uid=f"{uid}.save")
    pre_delete.connect(_on_delete, sender=model, dispatch_uid=f"{uid}.delete")
    if isinstance(model._default_manager.get_queryset(), models.QuerySet):
        register_update_guard(model, _on_update)
