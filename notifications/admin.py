"""Background work in the admin, scoped with guardian.

Workspace admins (`manage_workspace`) manage webhook endpoints, the audit export
destination and their automation settings; every write goes through the services, so
it is audited. Platform operators (superusers) alone edit the webhook host allowlist and
directory export destinations: they decide where Warden may connect or write. Signing
secrets are rendered once, into the response of the POST that issued them."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from approvals.admin_door import through_door
from common.errors import WardenError
from common.onetime import split_words
from common.scopes import WORKSPACE_ADMIN
from notifications import governance, services
from notifications.models import (
    EmailDelivery,
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WorkspaceAutomationSettings,
)
from notifications.slack import services as slack_services
from tenants.admin_base import (
    AdminWrite,
    ServiceCalls,
    WardenModelAdmin,
    secret_issued_response,
)

# --- automation settings ------------------------------------------------------------


class AutomationSettingsForm(forms.ModelForm):
    approval_escalate_to = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Backup approvers' e-mail addresses, one per line. Empty: the owners.",
    )
    webhook_host_allowlist = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One entry per line: exact host, *.suffix, or IP/CIDR (needed for "
        "private addresses). Empty: webhooks and exports may go nowhere. Operators only.",
    )
    # Write-only: never rendered back; sealed (encrypted) before it reaches the door.
    slack_bot_token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The Slack app's bot token (xoxb-…). Stored encrypted and never shown "
        "again; leave empty to keep the current one. Replacing it is a governed change.",
    )

    class Meta:
        model = WorkspaceAutomationSettings
        fields = [
            "workspace",
            "anomaly_auto_suspend",
            "email_notifications",
            "approval_remind_after_minutes",
            "approval_escalate_after_minutes",
            "approval_escalate_to",
            "slack_enabled",
            "slack_team_id",
            "slack_channel",
            "slack_dm_approvers",
            "unreported_result_window_minutes",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk:
            self.initial["webhook_host_allowlist"] = "\n".join(self.instance.webhook_host_allowlist)
            self.initial["approval_escalate_to"] = "\n".join(self.instance.approval_escalate_to)

    def clean_slack_bot_token(self) -> str:
        token = self.cleaned_data.get("slack_bot_token") or ""
        if not token:
            return ""
        try:
            return slack_services.seal_bot_token(token)
        except WardenError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_approval_escalate_to(self) -> list[str]:
        emails = split_words(self.cleaned_data.get("approval_escalate_to") or "")
        for email in emails:
            forms.EmailField().clean(email)
        return emails


def _automation_update(write: AdminWrite) -> WorkspaceAutomationSettings | None:
    """Created or changed alike. The same door as elsewhere: widening the host
    allowlist or switching auto-suspend off waits for a second person
    (approvals.governance). Only operators (superusers) edit the allowlist."""
    data, workspace = write.data, write.obj.workspace
    changes = {
        "anomaly_auto_suspend": data["anomaly_auto_suspend"],
        "email_notifications": data["email_notifications"],
    }
    # Reminder settings a form did not carry stay as they are (an empty one switches off).
    for name in (
        "approval_remind_after_minutes",
        "approval_escalate_after_minutes",
        "approval_escalate_to",
        "unreported_result_window_minutes",
    ):
        if name in write.request.POST:
            changes[name] = data[name]
    # Slack: turning it on, re-pointing it or a new token waits for a second person;
    # switching it off applies at once (approvals.effective).
    if "slack_channel" in write.request.POST:
        for name in ("slack_enabled", "slack_team_id", "slack_channel", "slack_dm_approvers"):
            changes[name] = data[name]
    if data.get("slack_bot_token"):
        changes["slack_bot_token_encrypted"] = data["slack_bot_token"]
    operator = write.request.user.is_superuser
    if operator:
        changes["webhook_host_allowlist"] = split_words(data.get("webhook_host_allowlist", ""))
    applied, saved = through_door(
        write.admin,
        write.request,
        workspace=workspace,
        proposal=governance.automation_update(workspace, changes, operator=operator),
    )
    return saved if applied else None


@admin.register(WorkspaceAutomationSettings)
class WorkspaceAutomationSettingsAdmin(WardenModelAdmin):
    view_scope = WORKSPACE_ADMIN
    change_scope = WORKSPACE_ADMIN
    writes = ServiceCalls(create=_automation_update, update=_automation_update)
    form = AutomationSettingsForm
    list_display = ("workspace", "anomaly_auto_suspend", "email_notifications", "allowlist")
    list_select_related = ("workspace",)

    @admin.display(description="webhook host allowlist")
    def allowlist(self, obj):
        return " ".join(obj.webhook_host_allowlist) or "— (deny all)"

    def get_fields(self, request, obj=None):
        fields = [
            "anomaly_auto_suspend",
            "email_notifications",
            "approval_remind_after_minutes",
            "approval_escalate_after_minutes",
            "approval_escalate_to",
            "unreported_result_window_minutes",
            "slack_enabled",
            "slack_team_id",
            "slack_channel",
            "slack_dm_approvers",
            "slack_bot_token",
            "webhook_host_allowlist",
        ]
        if not request.user.is_superuser:
            fields[-1] = "allowlist"
        return (["workspace"] if obj is None else []) + fields

    def get_readonly_fields(self, request, obj=None):
        return () if request.user.is_superuser else ("allowlist",)


# --- webhook endpoints ----------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=Event.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["workspace", "name", "url", "events", "enabled"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "status_code", "ok", "duration_ms", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _endpoint_create(write: AdminWrite) -> WebhookEndpoint:
    """A new endpoint sends notifications somewhere new (closed world): it is created
    switched off at once, which sends nothing, and switching it on is filed through the
    door for a second person. The signing secret is kept on the request for the one
    response that shows it (the proposer needs it either way)."""
    data = write.data
    issued = services.endpoint_create(
        workspace=data["workspace"],
        name=data["name"],
        url=data["url"],
        events=data["events"],
        actor=write.actor,
        enabled=False,
        reason=write.reason,
    )
    write.request._warden_issued_secret = issued.secret
    through_door(
        write.admin,
        write.request,
        workspace=issued.endpoint.workspace,
        proposal=governance.webhook_update(issued.endpoint, {"enabled": True}),
    )
    return issued.endpoint


def _endpoint_update(write: AdminWrite) -> None:
    # The same door as elsewhere: disabling the only active endpoint waits for a
    # second person (approvals.governance).
    current = WebhookEndpoint.objects.get(pk=write.obj.pk)
    through_door(
        write.admin,
        write.request,
        workspace=current.workspace,
        proposal=governance.webhook_update(
            current, {k: write.data[k] for k in ("name", "url", "events", "enabled")}
        ),
    )


def _endpoint_delete(write: AdminWrite) -> bool:
    applied, _ = through_door(
        write.admin,
        write.request,
        workspace=write.obj.workspace,
        proposal=governance.webhook_delete(write.obj),
    )
    return applied


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(WardenModelAdmin):
    view_scope = WORKSPACE_ADMIN
    change_scope = WORKSPACE_ADMIN
    writes = ServiceCalls(create=_endpoint_create, update=_endpoint_update, delete=_endpoint_delete)
    form = WebhookEndpointForm
    list_display = ("name", "workspace", "url", "event_list", "state", "consecutive_failures")
    list_select_related = ("workspace",)
    list_filter = (("workspace", admin.RelatedOnlyFieldListFilter),)
    readonly_fields = ("consecutive_failures", "disabled_at", "disabled_reason", "created_by")
    actions = ["reenable_selected", "rotate_secret"]

    @admin.display(description="events")
    def event_list(self, obj):
        return ", ".join(obj.events)

    @admin.display(description="state")
    def state(self, obj):
        if obj.disabled_at:
            return f"disabled ({obj.disabled_reason})"
        return "active" if obj.enabled else "off"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("workspace", "name", "url", "events")
        return ("name", "url", "events", "enabled", *self.readonly_fields)

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_warden_issued_secret", None)
        if secret is None:  # refused before anything was created
            return super().response_add(request, obj, post_url_continue)
        return secret_issued_response(
            self,
            request,
            title="Webhook endpoint created: copy its signing secret now",
            what=f"webhook endpoint {obj.name}",
            secret=secret,
            back=request.path.replace("/add/", "/"),
        )

    @admin.action(description="Re-enable selected endpoints (sends what is pending)")
    def reenable_selected(self, request, queryset):
        count = 0
        for endpoint in queryset:
            if self.has_change_permission(request, endpoint):
                try:
                    services.endpoint_reenable(
                        endpoint=endpoint,
                        actor=self.actor(request),
                        reason="re-enabled",  # the action itself is the why: lift a fault
                    )
                except WardenError as exc:  # switched off on purpose: governed to undo
                    self.message_user(request, f"{endpoint.name}: {exc.message}", messages.ERROR)
                    continue
                count += 1
        self.message_user(request, f"Re-enabled {count} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Rotate the signing secret (shown once)")
    def rotate_secret(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Rotate one endpoint at a time.", messages.ERROR)
            return None
        endpoint = queryset.get()
        if not self.has_change_permission(request, endpoint):
            self.message_user(request, "You may not change this endpoint.", messages.ERROR)
            return None
        issued = services.endpoint_rotate_secret(endpoint=endpoint, actor=self.actor(request))
        return secret_issued_response(
            self,
            request,
            title="Signing secret rotated: copy it now",
            what=f"webhook endpoint {endpoint.name}",
            secret=issued.secret,
            back=request.path,
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(WardenModelAdmin):
    view_scope = WORKSPACE_ADMIN
    change_scope = None
    list_display = ("created_at", "workspace", "endpoint", "event_type", "status", "attempts")
    list_filter = ("status", ("workspace", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("workspace", "endpoint", "event")
    fields = (
        "id",
        "workspace",
        "endpoint",
        "event_type",
        "status",
        "attempts",
        "created_at",
        "last_attempt_at",
        "delivered_at",
        "last_status_code",
        "last_error",
    )
    readonly_fields = fields
    inlines = [WebhookAttemptInline]

    @admin.display(description="event")
    def event_type(self, obj):
        return obj.event.event


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(WardenModelAdmin):
    view_scope = WORKSPACE_ADMIN
    change_scope = None
    list_display = ("created_at", "workspace", "recipient", "subject", "status", "attempts")
    list_filter = ("status", ("workspace", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("workspace",)
    fields = (
        "workspace",
        "recipient",
        "subject",
        "status",
        "attempts",
        "created_at",
        "sent_at",
        "last_error",
        "body_text",
    )
    readonly_fields = fields
