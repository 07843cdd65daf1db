"""The one base of every Warden ModelAdmin. An admin inherits `WardenModelAdmin` and
nothing else of Warden's: no mixin whose behaviour depends on where it sits in the
bases.

- Permissions come from the API's scope table: an admin names the scope that lets a
  person see its rows (`view_scope`) and the one that lets them write (`change_scope`;
  None: read-only for everyone, superusers included), and the guardian permission on the
  workspace is what common.scopes.SCOPE_PERMISSION maps that scope to, exactly as
  ScopeTablePermission does for a human API session.
- Rows are those of the workspaces where the person holds the view permission
  (superusers: all), through the one scoping helper, common.scoping.scoped.
- Writes are composed, not inherited: an admin declares which service function creates,
  updates and deletes its rows (`writes = ServiceCalls(...)`); the base runs the call in
  a savepoint with `self.actor(request)` at hand and turns a WardenError into an admin
  error message. No write of an admin ever reaches `Model.save()` or `Model.delete()`
  directly; an operation with no service call declared is not offered at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import router, transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from common.actor import Actor
from common.errors import WardenError
from common.onetime import OneTimeSecret
from common.scopes import SCOPE_PERMISSION, WORKSPACE_ADMIN
from common.scoping import scoped
from tenants.models import ROLE_PERMISSIONS, Role, Workspace
from tenants.selectors import permission_checker, workspaces_with_permission


def scope_permission(scope: str) -> str:
    """The workspace permission a human needs for `scope`: the API's table, read here
    for the admin. A scope only agents use (or an unknown one) is a programming error."""
    permission = SCOPE_PERMISSION.get(scope)
    if permission is None:
        raise ImproperlyConfigured(f"Scope {scope!r} maps to no human permission.")
    return permission


def permission_missing(perm: str) -> PermissionDenied:
    """A refusal that says which permission is missing and which roles carry it; the
    admin's 403 page (common.views.permission_denied) shows the message."""
    description = dict(Workspace._meta.permissions).get(perm, perm)
    roles = ", ".join(str(role.label) for role in Role if perm in ROLE_PERMISSIONS[role])
    return PermissionDenied(
        f"This page needs the permission “{description}” ({perm}) in a workspace. "
        f"Roles that have it: {roles or 'none'}. Ask a workspace admin if you need it."
    )


def holds_in(request, perm: str, workspace) -> bool:
    """Whether the admin user holds `perm` in `workspace`. One guardian checker per
    request: a page asks view/change/delete for the same object several times, and the
    first question fetches all of that workspace's permissions (two statements)."""
    checker = request.__dict__.get("_warden_permission_checker")
    if checker is None:
        checker = request._warden_permission_checker = permission_checker(request.user)
    return checker.has_perm(perm, workspace)


class BoundedChangeList(ChangeList):
    """Django's date drill-down computes the end of the chosen period outside its own
    error handling: `?created_at__year=9999` raises ValueError and `&created_at__month=12`
    OverflowError (a 500). Treat them as any bad lookup: back to the list with `?e=1`."""

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc


@dataclass(frozen=True)
class AdminWrite:
    """One write through the admin, as the declared service call receives it."""

    admin: WardenModelAdmin
    request: Any
    obj: Any
    form: Any = None

    @property
    def actor(self) -> Actor:
        return self.admin.actor(self.request)

    @property
    def data(self) -> dict[str, Any]:
        return self.form.cleaned_data if self.form is not None else {}

    @property
    def reason(self) -> str:
        """Why, as the person wrote it on the form (or the delete page). Not checked
        here: audit.services.require_reason is the one rule."""
        if self.form is not None and "reason" in self.form.cleaned_data:
            return self.form.cleaned_data["reason"]
        return reason_of(self.request)

    @property
    def changed(self) -> dict[str, Any]:
        """The fields the person changed, with their new values."""
        if self.form is None:
            return {}
        return {f: self.form.cleaned_data[f] for f in self.form.changed_data if f != REASON_FIELD}


ServiceCall = Callable[[AdminWrite], Any]
REASON_FIELD = "reason"


def reason_of(request) -> str:
    """The reason posted with an admin write (a form field, the delete pages' input)."""
    return str(request.POST.get(REASON_FIELD, "")) if request.method == "POST" else ""


def reason_field() -> forms.CharField:
    return forms.CharField(
        label="Why",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Required: recorded in the version log with this change.",
    )


@dataclass(frozen=True)
class ServiceCalls:
    """Which service call creates, updates and deletes an admin's rows. create/update
    return the saved row (None: nothing saved, e.g. waiting for a second person);
    delete returns False when nothing was deleted. A call left out is an operation the
    admin does not offer: no add, change or delete permission for anyone."""

    create: ServiceCall | None = None
    update: ServiceCall | None = None
    delete: ServiceCall | None = None


class WardenModelAdmin(admin.ModelAdmin):
    # Scopes of common.scopes; the permissions are SCOPE_PERMISSION's for them.
    view_scope: ClassVar[str] = WORKSPACE_ADMIN
    change_scope: ClassVar[str | None] = WORKSPACE_ADMIN
    # The path from a row to its workspace ("pk" for Workspace itself).
    workspace_field: ClassVar[str] = "workspace"
    writes: ClassVar[ServiceCalls] = ServiceCalls()
    # Shown after a bulk delete in which some rows were refused (Django's own message
    # is held back then, as it would count the refused ones too).
    deleted_message: ClassVar[str] = "Deleted {count} {name}."

    refusal_attr = "_warden_refused"
    # Every configuration change says why: the delete pages carry a reason input.
    delete_confirmation_template = "admin/warden_delete_confirmation.html"
    delete_selected_confirmation_template = "admin/warden_delete_selected_confirmation.html"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        scope_permission(cls.view_scope)  # fail at import, not on the first page
        if cls.change_scope is not None:
            scope_permission(cls.change_scope)

    # -- who is asking, and what they may do -------------------------------------------

    def actor(self, request) -> Actor:
        """The person behind an admin request, as services want them."""
        return Actor.for_request(request)

    @property
    def view_permission(self) -> str:
        return scope_permission(self.view_scope)

    @property
    def change_permission(self) -> str | None:
        return None if self.change_scope is None else scope_permission(self.change_scope)

    def permitted_workspaces(self, request, perm: str):
        return workspaces_with_permission(user=request.user, perm=perm)

    def workspace_of(self, obj):
        if isinstance(obj, Workspace):
            return obj
        for part in self.workspace_field.split("__"):
            obj = getattr(obj, part)
        return obj

    def holds(self, request, perm: str | None, obj=None) -> bool:
        """Whether the staff user holds `perm` in `obj`'s workspace, or in any workspace
        when `obj` is None. Superusers hold every permission; None is held by nobody."""
        if perm is None:
            return False
        if not request.user.is_active or not request.user.is_staff:
            return False
        if request.user.is_superuser:
            return True
        if obj is None:
            # "Holds `perm` in any workspace" is asked for every model on every admin
            # page (index, sidebar): one guardian query per permission per request.
            held = request.__dict__.setdefault("_warden_holds_anywhere", {})
            if perm not in held:
                held[perm] = self.permitted_workspaces(request, perm).exists()
            return held[perm]
        return holds_in(request, perm, self.workspace_of(obj))

    def has_module_permission(self, request):
        return self.holds(request, self.view_permission)

    def has_view_permission(self, request, obj=None):
        return self.holds(request, self.view_permission, obj) or self.has_change_permission(
            request, obj
        )

    def has_add_permission(self, request):
        return self.writes.create is not None and self.holds(request, self.change_permission)

    def has_change_permission(self, request, obj=None):
        if obj is not None and self.writes.update is None:
            return False
        return self.holds(request, self.change_permission, obj)

    def has_delete_permission(self, request, obj=None):
        return self.writes.delete is not None and self.holds(request, self.change_permission, obj)

    # -- rows ---------------------------------------------------------------------------

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        workspaces = self.permitted_workspaces(request, self.view_permission)
        return scoped(queryset, workspaces, field=self.workspace_field)

    def get_changelist(self, request, **kwargs):
        return BoundedChangeList

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Only offer workspaces the admin may change.
        if db_field.name == "workspace" and not request.user.is_superuser:
            kwargs["queryset"] = self.permitted_workspaces(request, self.change_permission)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except PermissionDenied as exc:
            raise (exc if str(exc) else permission_missing(self.view_permission)) from None

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PermissionDenied as exc:
            perm = self.view_permission if object_id else self.change_permission
            raise (exc if str(exc) or not perm else permission_missing(perm)) from None

    # -- why: every add and change form carries a reason ---------------------------------

    def _asks_reason(self, request, obj) -> bool:
        if obj is None:
            return self.writes.create is not None and self.has_add_permission(request)
        return self.writes.update is not None and self.has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if self._asks_reason(request, obj):
            fieldsets.append(("Why", {"fields": [REASON_FIELD]}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The model form plus a required `reason` (a form error when blank; the
        service refuses a blank one all the same, audit.services.require_reason)."""
        # `fields=None` is Django's own call from get_fields(): left as it is (asking
        # get_fieldsets here would recurse).
        if "fields" not in kwargs:
            kwargs["fields"] = flatten_fieldsets(self.get_fieldsets(request, obj))
        if kwargs["fields"] is None:
            return super().get_form(request, obj, change=change, **kwargs)
        kwargs["fields"] = [f for f in kwargs["fields"] if f != REASON_FIELD]
        form = super().get_form(request, obj, change=change, **kwargs)
        if not self._asks_reason(request, obj):
            return form
        return type(form.__name__, (form,), {REASON_FIELD: reason_field()})

    # -- writes, through the declared service calls -------------------------------------

    def _call(self, request, call: ServiceCall, write: AdminWrite) -> tuple[bool, Any]:
        """(done, result). A refusal rolls back whatever the call wrote (its savepoint)
        and becomes an error message."""
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                return True, call(write)
        except WardenError as exc:
            self.refuse(request, exc)
            return False, None

    def save_model(self, request, obj, form, change):
        call = self.writes.update if change else self.writes.create
        if call is None:
            raise PermissionDenied
        done, saved = self._call(request, call, AdminWrite(self, request, obj, form))
        if done and not change and isinstance(saved, self.model):
            # The row the service made: the admin's redirect and history name it.
            for field in self.model._meta.concrete_fields:
                setattr(obj, field.attname, getattr(saved, field.attname))
            obj._state.fields_cache.update(saved._state.fields_cache)  # no refetching
            obj._state.adding = False

    def delete_model(self, request, obj):
        if self.writes.delete is None:
            raise PermissionDenied
        done, result = self._call(request, self.writes.delete, AdminWrite(self, request, obj))
        return done and result is not False

    def delete_queryset(self, request, queryset):
        related = self.list_select_related
        if isinstance(related, list | tuple):
            queryset = queryset.select_related(*related)
        deleted = sum(bool(self.delete_model(request, obj)) for obj in queryset)
        if self.refused(request) and deleted:
            name = self.model._meta.verbose_name_plural
            messages.success(request, self.deleted_message.format(count=deleted, name=name))

    # -- refusals: an error message instead of "saved" ----------------------------------

    def withhold_success(self, request) -> None:
        """Nothing was saved (refused, or waiting for approval): no success message, no
        history entry, no redirect to an object that does not exist."""
        setattr(request, self.refusal_attr, True)

    def refuse(self, request, exc: WardenError) -> None:
        self.withhold_success(request)
        self.message_user(request, exc.message, messages.ERROR)

    def refused(self, request) -> bool:
        return getattr(request, self.refusal_attr, False)

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        if self.refused(request) and level == messages.SUCCESS:
            return
        super().message_user(request, message, level, *args, **kwargs)

    def log_addition(self, request, obj, message):
        if not self.refused(request):
            return super().log_addition(request, obj, message)
        return None

    def log_change(self, request, obj, message):
        if not self.refused(request):
            return super().log_change(request, obj, message)
        return None

    def back_to(self, request, name: str, *args):
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_{name}", args=args)
        )

    def response_add(self, request, obj, post_url_continue=None):
        if self.refused(request):
            return self.back_to(request, "add")
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if self.refused(request):
            return self.back_to(request, "change", obj.pk)
        return super().response_change(request, obj)

    def response_delete(self, request, obj_display, obj_id):
        if self.refused(request):
            return self.back_to(request, "change", obj_id)
        return super().response_delete(request, obj_display, obj_id)


SECRET_TEMPLATE = "admin/secret_issued.html"


def secret_issued_response(admin_obj, request, *, title: str, what: str, secret: str, back: str):
    """The page that shows a just-issued signing secret once (webhooks, exports): never
    cached, so the secret lives only in the response of the POST that issued it."""
    context = {
        **admin_obj.admin_site.each_context(request),
        "opts": admin_obj.model._meta,
        "title": title,
        "what": what,
        "secret": OneTimeSecret(secret),
        "back": back,
    }
    response = TemplateResponse(request, SECRET_TEMPLATE, context)
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
    return response
