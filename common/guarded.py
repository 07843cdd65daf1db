"""A write hook for models whose changes may loosen governance.

Lower apps (tenants, keys) own the models; the rules that say which change needs a
human live higher up (approvals.guard). Models opt in with `GuardedQuerySet` and the
higher layer registers a check here, so a bulk `QuerySet.update()` cannot slip past
the check that `save()` and `delete()` get through Django's model signals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models

UpdateGuard = Callable[[models.QuerySet, dict[str, Any]], None]
_UPDATE_GUARDS: dict[type[models.Model], UpdateGuard] = {}


def register_update_guard(model: type[models.Model], guard: UpdateGuard) -> None:
    _UPDATE_GUARDS[model] = guard


def is_guarded(model: type[models.Model]) -> bool:
    return model in _UPDATE_GUARDS


class GuardedQuerySet(models.QuerySet):
    def update(self, **kwargs):
        guard = _UPDATE_GUARDS.get(self.model)
        if guard is not None:
            guard(self, kwargs)
        return super().update(**kwargs)
