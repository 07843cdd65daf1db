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


def test_update_row_changes_one_row_and_counts_it(live_workspace):
    event = _event(live_workspace)
    event.save()
    assert update_row(NotificationEvent, event.pk, {"payload": {"seen": True}}) == 1
    event.refresh_from_db()
    assert event.payload == {"seen": True}


def test_update_row_with_a_condition_that_fails_changes_nothing(live_workspace):
    event = _event(live_workspace, payload={"kept": True})
    event.save()
    changed = update_row(
        NotificationEvent,
        event.pk,
        {"payload": {"lost": True}},
        where="event_key = %s",
        where_params=["another-key"],
    )
    assert changed == 0
    event.refresh_from_db()
    assert event.payload == {"kept": True}


def test_update_row_along_another_row_changes_both(live_workspace):
    first, second = _event(live_workspace, key="e-1"), _event(live_workspace, key="e-2")
    first.save()
    second.save()
    changed = update_row(
        NotificationEvent,
        first.pk,
        {"payload": {"first": True}},
        where="event_key = %s",
        where_params=["e-1"],
        along=(NotificationEvent, second.pk, {"payload": {"second": True}}),
    )
    assert changed == 1  # the count is the conditional row's
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.payload, second.payload) == ({"first": True}, {"second": True})


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
