"""The hand-built statements of the hot paths answer exactly what the ORM would, and
refuse the models whose writes the governance guard must see."""

import pytest

from approvals.models import Tool
from common.sql import insert_once, selected_model, update_row
from keys.lookup import key_by_prefix
from keys.models import MachineKey
from notifications.models import NotificationEvent

pytestmark = pytest.mark.django_db


def _event(workspace, key="e-1", **fields):
    return NotificationEvent(workspace=workspace, event="action.executed", event_key=key, **fields)


def test_insert_once_inserts_a_row_once(live_workspace):
    first = _event(live_workspace, payload={"n": 1})
    assert insert_once(first) is True and not first._state.adding
    assert insert_once(_event(live_workspace, payload={"n": 2})) is False  # same event_key
    assert list(NotificationEvent.objects.values_list("pk", "payload")) == [(first.pk, {"n": 1})]


def _saved(workspace, key="e-1", **fields):
    event = _event(workspace, key, **fields)
    event.save()
    return event


def _payload(event):
    return NotificationEvent.objects.get(pk=event.pk).payload


def test_update_row_changes_one_row_and_counts_it(live_workspace):
    event = _saved(live_workspace)
    assert update_row(NotificationEvent, event.pk, {"payload": {"seen": True}}) == 1
    assert _payload(event) == {"seen": True}


def test_update_row_changes_only_a_row_that_meets_the_condition(live_workspace):
    kept, changed = _saved(live_workspace, "e-1"), _saved(live_workspace, "e-2")
    where = {"where": "event_key = %s", "where_params": ["e-2"]}
    assert update_row(NotificationEvent, kept.pk, {"payload": {"lost": True}}, **where) == 0
    along = (NotificationEvent, kept.pk, {"payload": {"along": True}})
    assert update_row(NotificationEvent, changed.pk, {"payload": {}}, along=along, **where) == 1
    # `along` is unconditional; the count is the conditional row's.
    assert (_payload(kept), _payload(changed)) == ({"along": True}, {})


def test_governed_models_are_refused(live_workspace, make_tool):
    tool = make_tool(live_workspace)
    with pytest.raises(TypeError, match="governed"):
        update_row(Tool, tool.pk, {"enabled": True})
    with pytest.raises(TypeError, match="governed"):
        update_row(NotificationEvent, 1, {"payload": {}}, along=(Tool, tool.pk, {"enabled": 1}))
    with pytest.raises(TypeError, match="governed"):
        insert_once(Tool(workspace=live_workspace, name="crm.sneaky", enabled=True))
    tool.refresh_from_db()
    assert not Tool.objects.filter(name="crm.sneaky").exists()


def test_selected_columns_load_what_the_orm_loads(agent):
    key, _ = agent
    loaded = key_by_prefix(key.prefix)
    orm = MachineKey.objects.select_related("workspace", "owner").get(pk=key.pk)
    columns = selected_model(MachineKey, "k", "default").attnames
    assert {name: getattr(loaded, name) for name in columns} == {
        name: getattr(orm, name) for name in columns
    }
    assert (loaded.workspace.slug, loaded.owner.email) == (orm.workspace.slug, orm.owner.email)
