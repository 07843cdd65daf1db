"""Machine keys in the admin, scoped with guardian (`manage_keys`).

Keys are created, rotated and revoked only through keys.services, so each change is
audited. The full key is rendered once, in the response to the POST that created or
rotated it (never stored, never put in a message or the session); afterwards the admin
shows the prefix and the name, never a digest. Keys are not edited or deleted here.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_variables
from oauth2_provider import models as oauth_models

from approvals import proposals
from approvals.admin_door import through_door
from common.errors import WardenError
from common.onetime import OneTimeSecret, split_words
from common.scopes import ALL_SCOPES, KEYS_READ, KEYS_WRITE
from keys import services
from keys.models import MachineKey
from keys.validation import clean_allowed_ips, clean_scopes, clean_tool_allowlist
from tenants.admin_base import AdminWrite, ServiceCalls, WardenModelAdmin
from tenants.models import Membership

User = get_user_model()

ISSUED_TEMPLATE = "admin/keys/machinekey/issued.html"
CONFIRM_TEMPLATE = "admin/keys/machinekey/confirm.html"
DETAIL_FIELDS = (
    "name",
    "full_prefix",
    "credential",
    "oauth_client",
    "workspace",
    "owner_email",
    "status",
    "scopes_shown",
    "allowlist_shown",
    "expires_shown",
    "allowed_ips_shown",
    "rate_limit_per_minute",
    "unattended_mode",
    "created_by",
    "created_shown",
    "last_used_shown",
    "revoked_shown",
    "revoked_by",
)


def _items(values) -> str:
    """A list as a list, not a JSON array: one item a line, escaped."""
    return (
        format_html_join(mark_safe("<br>"), "<code>{}</code>", ((v,) for v in values or ())) or "—"
    )


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z") if value else "—"


def _field_errors(exc: WardenError) -> forms.ValidationError:
    messages_ = [m for msgs in exc.detail.values() for m in msgs] if exc.detail else []
    return forms.ValidationError(messages_ or exc.message)


class OwnerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.email or obj.get_username()


class MachineKeyAddForm(forms.ModelForm):
    actor = None  # the admin's actor, set by MachineKeyAdmin.get_form

    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in sorted(ALL_SCOPES)],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Default-deny: a key with no scope can do nothing.",
    )
    tool_allowlist = forms.CharField(
        required=False,
        help_text="Tool patterns separated by spaces or commas, e.g. crm.* email.send",
    )
    allowed_ips = forms.CharField(
        required=False, label="Allowed IPs", help_text="CIDRs; empty allows any address."
    )

    class Meta:
        model = MachineKey
        fields = ["workspace", "name", "owner", "expires_at", "rate_limit_per_minute"]

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return expires_at

    def clean_scopes(self):
        try:
            return clean_scopes(list(self.cleaned_data["scopes"]))
        except WardenError as exc:
            raise _field_errors(exc) from None

    def clean_tool_allowlist(self):
        try:
            return clean_tool_allowlist(split_words(self.cleaned_data["tool_allowlist"]))
        except WardenError as exc:
            raise _field_errors(exc) from None

    def clean_allowed_ips(self):
        try:
            return clean_allowed_ips(split_words(self.cleaned_data["allowed_ips"]))
        except WardenError as exc:
            raise _field_errors(exc) from None

    def clean(self):
        cleaned = super().clean()
        workspace, owner = cleaned.get("workspace"), cleaned.get("owner")
        if (
            workspace
            and owner
            and not Membership.objects.filter(workspace=workspace, user=owner).exists()
        ):
            self.add_error("owner", "The key's owner must be a member of this workspace.")
        if workspace and cleaned.get("scopes") and self.actor is not None:
            beyond = services.scopes_actor_cannot_grant(
                actor=self.actor, workspace=workspace, scopes=cleaned["scopes"]
            )
            if beyond:
                self.add_error(
                    "scopes", f"You cannot hand out scopes you do not hold: {', '.join(beyond)}."
                )
        return cleaned


def _key_create(write: AdminWrite) -> MachineKey | None:
    """The same door as the API: a key with a governance scope waits for a second
    person. The secret, when the creator may see it, is kept on the request for the
    one response that shows it."""
    data, request = write.data, write.request
    fields = {
        "name": data["name"],
        "scopes": data["scopes"],
        "tool_allowlist": data["tool_allowlist"],
        "expires_at": data.get("expires_at"),
        "allowed_ips": data["allowed_ips"],
        "rate_limit_per_minute": data.get("rate_limit_per_minute"),
    }
    applied, issued = through_door(
        write.admin,
        request,
        workspace=data["workspace"],
        proposal=proposals.key_create(data["workspace"], data["owner"], fields),
    )
    if not applied:
        return None
    if issued.plaintext is None:
        write.admin.message_user(
            request,
            f"Key {issued.key.name} created. Its secret goes to its owner "
            f"({issued.key.owner.email}), who claims it on the key's page.",
            messages.SUCCESS,
        )
    else:
        request._warden_issued_key = issued.plaintext
    return issued.key


@admin.register(MachineKey)
class MachineKeyAdmin(WardenModelAdmin):
    view_scope = KEYS_READ
    change_scope = KEYS_WRITE
    # Keys are created here and revoked or rotated from their page; never edited or
    # deleted (they are evidence): no update or delete call.
    writes = ServiceCalls(create=_key_create)
    list_display = (
        "name",
        "full_prefix",
        "credential",
        "workspace",
        "owner_email",
        "status",
        "scope_list",
        "expires_at",
        "last_used_at",
    )
    list_filter = (("workspace", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "prefix")
    list_select_related = ("workspace", "owner", "oauth_application")
    ordering = ("workspace__slug", "name")
    actions = ["revoke_selected"]
    form = MachineKeyAddForm

    # Display helpers: the prefix identifies a key; its digest is never shown.
    @admin.display(description="key", ordering="prefix")
    def full_prefix(self, obj):
        return f"wdn_{obj.prefix}_…"

    @admin.display(description="OAuth client")
    def oauth_client(self, obj):
        application = obj.oauth_application
        if application is None:
            return "—"
        return f"{application.name or 'unnamed'} ({application.client_id})"

    @admin.display(description="owner", ordering="owner__email")
    def owner_email(self, obj):
        return obj.owner.email

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return " ".join(obj.scopes) or "—"

    @admin.display(description="scopes")
    def scopes_shown(self, obj):
        return _items(obj.scopes)

    @admin.display(description="tool allowlist")
    def allowlist_shown(self, obj):
        return _items(obj.tool_allowlist)

    @admin.display(description="allowed IPs")
    def allowed_ips_shown(self, obj):
        return _items(obj.allowed_ips) if obj.allowed_ips else "any address"

    @admin.display(description="expires")
    def expires_shown(self, obj):
        return _when(obj.expires_at) if obj.expires_at else "never"

    @admin.display(description="created")
    def created_shown(self, obj):
        return _when(obj.created_at)

    @admin.display(description="last used")
    def last_used_shown(self, obj):
        return _when(obj.last_used_at) if obj.last_used_at else "never"

    @admin.display(description="revoked")
    def revoked_shown(self, obj):
        return _when(obj.revoked_at)

    def has_manage_keys_permission(self, request, obj=None):
        """Revoke, rotate (the object tools and the bulk action): the write scope's."""
        return self.holds(request, self.change_permission, obj)

    def get_fields(self, request, obj=None):
        if obj is None:
            return (
                "workspace",
                "name",
                "owner",
                "scopes",
                "tool_allowlist",
                "expires_at",
                "allowed_ips",
                "rate_limit_per_minute",
            )
        return DETAIL_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else DETAIL_FIELDS

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            form = type("BoundMachineKeyAddForm", (form,), {"actor": self.actor(request)})
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            # Only members of workspaces this admin manages: never every user of every tenant.
            users = User.objects.filter(is_active=True).order_by("email")
            if not request.user.is_superuser:
                users = users.filter(
                    memberships__workspace__in=self.permitted_workspaces(
                        request, self.change_permission
                    )
                ).distinct()
            kwargs["queryset"] = users
            kwargs["form_class"] = OwnerChoiceField
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @sensitive_variables("plaintext")
    def response_add(self, request, obj, post_url_continue=None):
        plaintext = getattr(request, "_warden_issued_key", None)
        if self.refused(request) or plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        return self._issued_response(request, obj, plaintext, "created")

    @sensitive_variables("plaintext", "context")
    def _issued_response(self, request, key, plaintext: str, verb: str):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Key {verb}: copy it now",
            "key": key,
            "plaintext": OneTimeSecret(plaintext),
            "verb": verb,
        }
        response = TemplateResponse(request, ISSUED_TEMPLATE, context)
        add_never_cache_headers(response)
        response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
        return response

    @admin.action(description="Revoke selected keys", permissions=["manage_keys"])
    def revoke_selected(self, request, queryset):
        actor = self.actor(request)
        revoked = 0
        for key in queryset.select_related("workspace"):
            if key.revoked_at is None and self.has_manage_keys_permission(request, key):
                services.key_revoke(key=key, actor=actor, reason="revoked in the admin")
                revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)

    # Object tools on the key's page: revoke and rotate, each confirmed by a POST.
    def get_urls(self):
        base = f"{self.model._meta.app_label}_{self.model._meta.model_name}"
        own = [
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name=f"{base}_revoke",
            ),
            path(
                "<path:object_id>/rotate/",
                self.admin_site.admin_view(self.rotate_view),
                name=f"{base}_rotate",
            ),
            path(
                "<path:object_id>/claim/",
                self.admin_site.admin_view(self.claim_view),
                name=f"{base}_claim",
            ),
            path(
                "<path:object_id>/unsuspend/",
                self.admin_site.admin_view(self.unsuspend_view),
                name=f"{base}_unsuspend",
            ),
            path(
                "<path:object_id>/unattended/",
                self.admin_site.admin_view(self.unattended_view),
                name=f"{base}_unattended",
            ),
        ]
        return own + super().get_urls()

    def _managed_key(self, request, object_id) -> MachineKey:
        key = self.get_object(request, object_id)  # scoped queryset: other tenants' keys 404
        if key is None:
            raise Http404("No such key.")
        if not self.has_manage_keys_permission(request, key):
            raise PermissionDenied
        return key

    def _confirm(self, request, key, action: str, extra=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{action.capitalize()} key {key.name}?",
            "key": key,
            "action": action,
            **(extra or {}),
        }
        return TemplateResponse(request, CONFIRM_TEMPLATE, context)

    def _change_url(self, key):
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[key.pk])

    def revoke_view(self, request, object_id):
        key = self._managed_key(request, object_id)
        if request.method != "POST":
            return self._confirm(request, key, "revoke")
        try:
            services.key_revoke(
                key=key, actor=self.actor(request), reason=request.POST.get("reason", "")[:2000]
            )
        except WardenError as exc:  # no reason given (audit.services.require_reason)
            self.message_user(request, exc.message, messages.ERROR)
            return self._confirm(request, key, "revoke")
        self.message_user(request, f"Key {key.name} revoked.", messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(key))

    def rotate_view(self, request, object_id):
        key = self._managed_key(request, object_id)
        default_hours = int(settings.WARDEN_KEY_ROTATION_GRACE.total_seconds() // 3600)
        if request.method != "POST":
            return self._confirm(
                request, key, "rotate", {"grace_hours": default_hours, "max_grace_hours": 168}
            )
        try:
            hours = int(request.POST.get("grace_hours", default_hours))
            issued = services.key_rotate(
                key=key, actor=self.actor(request), grace=timedelta(hours=hours)
            )
        except (ValueError, OverflowError):
            self.message_user(request, "Grace must be a whole number of hours.", messages.ERROR)
            return HttpResponseRedirect(self._change_url(key))
        except WardenError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(self._change_url(key))
        if issued.plaintext is None:
            self.message_user(
                request,
                f"Key {key.name} rotated. The new secret goes to its owner "
                f"({key.owner.email}), who claims it on this page; the current one keeps "
                "working until then.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(self._change_url(key))
        return self._issued_response(request, issued.key, issued.plaintext, "rotated")

    def unsuspend_view(self, request, object_id):
        """Lift a suspension (anomaly auto-suspend). Letting a suspended agent act again
        widens what it may do, so it goes through the door: another person approves it
        in the approval queue before the key works again."""
        key = self._managed_key(request, object_id)
        if key.suspended_at is None or key.revoked_at is not None:
            self.message_user(request, f"Key {key.name} is not suspended.", messages.INFO)
            return HttpResponseRedirect(self._change_url(key))
        if request.method != "POST":
            return self._confirm(request, key, "unsuspend")
        applied, _ = through_door(
            self,
            request,
            workspace=key.workspace,
            proposal=proposals.key_unsuspend(key),
            reason=request.POST.get("reason", "")[:2000],
        )
        if applied:
            self.message_user(request, f"Key {key.name} may act again.", messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(key))

    def unattended_view(self, request, object_id):
        """Switch unattended mode: on lets the agent skip tools' confirmation rules, so it
        goes through the door (another person approves it); off applies at once."""
        key = self._managed_key(request, object_id)
        switch_on = not key.unattended_mode
        if request.method != "POST":
            return self._confirm(request, key, "switch unattended mode", {"switch_on": switch_on})
        applied, _ = through_door(
            self,
            request,
            workspace=key.workspace,
            proposal=proposals.key_set_unattended(key, switch_on),
            reason=request.POST.get("reason", "")[:2000],
        )
        if applied:
            state = "on" if switch_on else "off"
            self.message_user(
                request, f"Unattended mode of key {key.name} is {state}.", messages.SUCCESS
            )
        return HttpResponseRedirect(self._change_url(key))

    def claim_view(self, request, object_id):
        """The owner takes a secret someone else made or rotated for them (POST only)."""
        key = self.get_object(request, object_id)
        if key is None:
            raise Http404("No such key.")
        if request.method != "POST":
            return self._confirm(request, key, "claim")
        try:
            issued = services.key_claim_secret(key=key, actor=self.actor(request))
        except WardenError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(self._change_url(key))
        return self._issued_response(request, issued.key, issued.plaintext, "claimed")


# django-oauth-toolkit's own admin pages would list every tenant's clients and tokens
# (and skip the workspace scoping): not offered. An OAuth grant is a key, above.
for _model in (
    oauth_models.get_application_model(),
    oauth_models.get_access_token_model(),
    oauth_models.get_refresh_token_model(),
    oauth_models.get_grant_model(),
    oauth_models.get_id_token_model(),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
