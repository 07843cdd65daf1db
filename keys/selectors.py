from django.db.models import QuerySet

from keys.models import MachineKey
from tenants.models import Workspace
from tenants.scoping import scoped


def key_list(*, workspace: Workspace) -> QuerySet[MachineKey]:
    return scoped(MachineKey.objects.select_related("owner"), workspace).order_by("-created_at")


def key_get(*, workspace: Workspace, pk) -> MachineKey | None:
    return key_list(workspace=workspace).filter(pk=pk).first()
