"""Every Warden ModelAdmin stands on one base, tenants.admin_base.WardenModelAdmin, and
its permissions are the ones the API's scope table (common.scopes.SCOPE_PERMISSION)
maps its scopes to: a role without that permission is refused the admin's pages, a role
with it gets them."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from common.scopes import SCOPE_PERMISSION, TOOLS_WRITE
from tenants.admin_base import WardenModelAdmin
from tenants.models import ROLE_PERMISSIONS, Role, Workspace

WARDEN_APPS = {"tenants", "keys", "approvals", "audit", "gateway", "notifications", "oversight"}
WARDEN_ADMINS = sorted(
    (
        model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in WARDEN_APPS
    ),
    key=lambda model_admin: model_admin.model._meta.label,
)
# Fewest permissions first: the holder is the narrowest role that has the permission.
ROLES_BY_REACH = sorted(
    (Role.ADMIN, Role.APPROVER, Role.AUDITOR, Role.OWNER), key=lambda r: len(ROLE_PERMISSIONS[r])
)


def by_label(model_admin) -> str:
    return model_admin.model._meta.label


def holder_of(perm: str) -> Role:
    return next(role for role in ROLES_BY_REACH if perm in ROLE_PERMISSIONS[role])


def staff_role_without(perm: str) -> Role:
    """A role that opens the admin (it holds some permission) but not `perm`."""
    return next(
        role
        for role in ROLES_BY_REACH
        if ROLE_PERMISSIONS[role] and perm not in ROLE_PERMISSIONS[role]
    )


def changelist_url(model_admin) -> str:
    opts = model_admin.model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")


@pytest.fixture
def user_with_role(workspace, make_member):
    def make(role):
        if role == Role.OWNER:
            return workspace.memberships.get(role=Role.OWNER).user
        return make_member(workspace, role)

    return make


def test_warden_registers_an_admin_for_each_of_its_models():
    # The parametrized tests below would pass vacuously over an empty registry.
    assert len(WARDEN_ADMINS) >= 15


@pytest.mark.parametrize("model_admin", WARDEN_ADMINS, ids=by_label)
def test_every_admin_inherits_the_one_base_and_no_mixin(model_admin):
    assert isinstance(model_admin, WardenModelAdmin)
    warden_bases = [
        cls
        for cls in type(model_admin).__mro__
        if cls.__module__.split(".")[0] in WARDEN_APPS | {"common"}
    ]
    # Every class Warden adds between Django's ModelAdmin and the admin is the base or a
    # subclass of it: nothing that only works when listed first.
    assert all(issubclass(cls, WardenModelAdmin) for cls in warden_bases), warden_bases


@pytest.mark.parametrize("model_admin", WARDEN_ADMINS, ids=by_label)
def test_every_admins_permissions_are_the_scope_tables(model_admin):
    assert model_admin.view_permission == SCOPE_PERMISSION[model_admin.view_scope]
    if model_admin.change_scope is None:
        assert model_admin.change_permission is None
    else:
        assert model_admin.change_permission == SCOPE_PERMISSION[model_admin.change_scope]


@pytest.mark.parametrize("model_admin", WARDEN_ADMINS, ids=by_label)
def test_a_role_without_the_tables_permission_is_refused_and_one_with_it_is_let_in(
    model_admin, workspace, user_with_role, admin_client_for
):
    perm = model_admin.view_permission
    url = changelist_url(model_admin)
    outsider = user_with_role(staff_role_without(perm))
    insider = user_with_role(holder_of(perm))

    refused = admin_client_for(outsider).get(url)
    assert refused.status_code == 403
    assert f"({perm})" in refused.content.decode()  # the page names what is missing
    assert admin_client_for(insider).get(url).status_code == 200

    # The same answer for one of the workspace's rows (the change/detail page's check).
    row = workspace if model_admin.model is Workspace else model_admin.model(workspace=workspace)
    factory = RequestFactory()
    for user, allowed in ((outsider, False), (insider, True)):
        request = factory.get(url)
        request.user = user
        assert model_admin.has_view_permission(request, row) is allowed


def test_changing_the_table_changes_what_the_admin_asks_for(
    monkeypatch, workspace, user_with_role, admin_client_for
):
    """The admin reads the table when it asks, it keeps no copy of its own."""
    auditor = admin_client_for(user_with_role(Role.AUDITOR))
    tools = reverse("admin:approvals_tool_changelist")
    assert auditor.get(tools).status_code == 403
    monkeypatch.setitem(SCOPE_PERMISSION, TOOLS_WRITE, "view_audit")
    assert auditor.get(tools).status_code == 200


@pytest.mark.parametrize("model_admin", WARDEN_ADMINS, ids=by_label)
def test_an_operation_without_a_declared_service_call_is_offered_to_nobody(
    model_admin, workspace, make_user
):
    """Superusers included: the admin never falls back to Model.save()/delete()."""
    operator = make_user()
    operator.is_staff = operator.is_superuser = True
    operator.save()
    request = RequestFactory().get("/admin/")
    request.user = operator
    row = workspace if model_admin.model is Workspace else model_admin.model(workspace=workspace)
    writes = model_admin.writes
    assert model_admin.has_view_permission(request, row)
    assert model_admin.has_change_permission(request, row) is (writes.update is not None)
    assert model_admin.has_delete_permission(request, row) is (writes.delete is not None)
    if model_admin.model is not Workspace:  # workspaces: operators add them by design
        assert model_admin.has_add_permission(request) is (writes.create is not None)
