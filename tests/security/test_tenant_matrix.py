"""The cross-tenant matrix: every route of the project, every method it serves.

Every URL pattern is enumerated from `django.urls.get_resolver()`; ROWS says, for each
route and method, which object of workspace A the request points at and how the request
is made. Two intruders of workspace B try it: a `workspace:admin` machine key and B's
owner, logged in (every workspace permission there; an "admin" role lacks
`manage_workspace`, and a refusal by permission would hide what scoping does). For each:

- OBJECT rows name A's object (in the path, the query or the body): the answer is
  exactly the answer for an object that does not exist (a missing id of the same kind),
  and where the route serves that principal it is the stable 404 `not_found` for the
  API, a 404 (or Django's own "doesn't exist" redirect to the index) in the admin;
- LIST rows: A's object (its id, name, A's slug and id) appears nowhere in the answer;
- OWN rows (collection writes, singletons, session calls): the call acts on B only.

In every case nothing in A changes: each row of every model that belongs to a
workspace (the audit chain included) reads the same before and after.
`test_every_route_and_method_is_in_the_matrix` fails when a route or a method is added
without a row here (or an explicit, commented exclusion)."""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Max
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern
from django.utils import timezone
from oauth2_provider.models import AccessToken, RefreshToken, get_application_model, set_token_value
from rest_framework.test import APIClient
from rest_framework.views import APIView

from approvals.asking import action_submit
from approvals.catalog import tool_create
from approvals.confirmations import confirmation_approve
from approvals.guard import operator_seeding
from approvals.models import ApprovalRecord, ConfirmationRequest, PolicyVersion
from approvals.policy.document import export_document
from approvals.policy.services import policy_apply
from approvals.review_link import QUERY_PARAMETER, decision_link_token, review_link_token
from audit.attachments import attachment_add
from audit.events import EVENTS
from audit.models import AuditAction, AuditEntry, VersionLog
from audit.services import audit_record, exception_record
from common.actor import Actor
from gateway.models import Connector, Execution
from keys.services import key_create
from notifications.models import (
    EmailDelivery,
    NotificationEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.services import automation_settings_update
from oversight.models import AnomalyFinding, AuditExportBatch, AuditExportDestination
from tenants.models import Membership, Role, Workspace, role_group_name
from tenants.services import invitation_create, membership_add
from tests.audit.helpers import AGENT, append
from tests.conftest import SYSTEM

# Over 300 requests, each with a snapshot of every workspace-owned row: run in the full
# suite (PostgreSQL in CI), not again in the fast one.
pytestmark = pytest.mark.slow

# Routes no tenant data lies behind, each with the reason it is outside the matrix.
EXCLUDED = {
    # Public, workspace-free: the OpenAPI schema and its two viewers.
    "api/schema/": "public schema",
    "api/docs/": "public schema viewer",
    "api/redoc/": "public schema viewer",
    # The JSON 404 for unknown API paths: answers not_found to everyone, reads nothing.
    "^api/": "catch-all JSON 404",
    # The admin's own account pages: login, logout, one's own password, the JS catalog.
    "admin/login/": "login (tests/security/test_guessing.py)",
    "admin/logout/": "logout of one's own session",
    "admin/password_change/": "one's own password",
    "admin/password_change/done/": "one's own password",
    "admin/jsi18n/": "static JavaScript catalog",
    # Single sign-on: no object behind them; the provider names the person.
    "oidc/authenticate/": "SSO start (tests/e2e/test_sso.py)",
    "oidc/callback/": "SSO return (tests/e2e/test_sso.py)",
    # OAuth metadata (RFC 8414, RFC 9728): the same public document for everyone.
    ".well-known/oauth-authorization-server": "public OAuth metadata",
    ".well-known/oauth-protected-resource": "public OAuth metadata",
    ".well-known/oauth-protected-resource/mcp": "public OAuth metadata",
    # Slack's interactivity URL: no key, no session; Slack signs it, and a press acts only
    # for a linked user in the request's own Slack team and workspace (the cross-team and
    # cross-workspace cases: tests/notifications/test_slack.py).
    "integrations/slack/interactions": "Slack-signed (tests/notifications/test_slack.py)",
    # Django's catch-all: any unknown admin path redirects/404s, no object behind it.
    "admin/(?P<url>.*)$": "catch-all admin 404",
}

OBJECT, LIST, OWN = "object", "list", "own"
VICTIM_CLIENT = "matrix-victim-client"
INTRUDER_CLIENT = "matrix-intruder-client"
OAUTH_REDIRECT = "http://127.0.0.1:33418/callback"
MISSING_INT = 2_147_480_000


@dataclass(frozen=True)
class Row:
    """One route and method. `target` names the object of A (a World attribute); `ref`
    the attribute of it the request carries; {ref} in `path` or in `body` values is
    replaced by it (or, for the comparison, by a value naming nothing)."""

    route: str
    method: str
    kind: str
    target: str
    path: str
    ref: str = "pk"
    body: dict | None = None
    # (status, code) answered where the route serves the principal; None: any refusal
    # equal to the missing case.
    expect: tuple[int, str | None] | None = (404, "not_found")
    json: bool = True
    principals: tuple[str, ...] = ("key", "session")
    extra: dict = field(default_factory=dict)
    # A known difference between a foreign and a missing object, still to be fixed:
    # the row runs as a strict xfail, so the fix makes it fail until this is removed.
    known: str = ""
    # Request headers ({ref} filled like the body).
    headers: dict = field(default_factory=dict)
    # LIST and OWN rows: the statuses a caller the route serves must get.
    ok: tuple[int, ...] = (200,)

    @property
    def id(self) -> str:
        return f"{self.method.upper()} /{self.route}"


# --- workspace A: each object built on first use ---------------------------------


class World:
    """Workspace A (live, writes on) and, lazily, one object of each kind in it."""

    def __init__(self, make_workspace, make_member, make_key, make_user):
        self._make_member, self._make_key, self._make_user = (
            make_member,
            make_key,
            make_user,
        )
        self.workspace = make_workspace(
            slug="victim-a", writes_enabled=True, mode="live", outbound_allowed=True
        )

    @cached_property
    def owner(self):
        return Membership.objects.get(workspace=self.workspace, role=Role.OWNER).user

    @cached_property
    def membership(self):
        user = self._make_member(self.workspace, Role.ADMIN, email="victim-admin@example.test")
        return Membership.objects.get(workspace=self.workspace, user=user)

    @cached_property
    def key(self):
        key, _ = self._make_key(
            self.workspace, scopes=["workspace:admin"], name="victim-key", owner=self.owner
        )
        return key

    @cached_property
    def tool(self):
        with operator_seeding():
            return tool_create(
                reason="test set-up",
                workspace=self.workspace,
                actor=SYSTEM,
                name="victimcrm.update",
                level="write",
                confirmation="always",
            )

    def _ask(self, deal: int):
        answer = action_submit(
            key=self.key,
            tool_name=self.tool.name,
            params={"deal": deal},
            actor=Actor.for_key(self.key),
        )
        confirmation = ConfirmationRequest.objects.get(action_request_id=answer.action_id)
        return confirmation, answer.confirmation_token

    @cached_property
    def _pending(self):
        return self._ask(1)

    @cached_property
    def confirmation(self):
        """Pending, in A's approval queue."""
        return self._pending[0]

    @cached_property
    def action(self):
        return self.confirmation.action_request

    @cached_property
    def _approved(self):
        confirmation, token = self._ask(2)
        approver = self._make_member(self.workspace, Role.APPROVER)
        confirmation_approve(confirmation=confirmation, reason="ok", actor=Actor.for_user(approver))
        return confirmation, token

    @cached_property
    def approval_record(self):
        return ApprovalRecord.objects.get(confirmation=self._approved[0])

    @cached_property
    def confirmation_token(self) -> str:
        """The token of A's approved confirmation: in A, it would now allow the call."""
        return self._approved[1]

    @cached_property
    def approve_button(self) -> str:
        """A's e-mail Approve button (a genuine signed link for A's request)."""
        return decision_link_token(
            confirmation_id=self.confirmation.pk,
            workspace_id=self.workspace.pk,
            expires_at=timezone.now() + timedelta(hours=1),
            verdict="approve",
        )

    @cached_property
    def review_link(self) -> str:
        return review_link_token(
            confirmation_id=self.confirmation.pk,
            workspace_id=self.workspace.pk,
            expires_at=timezone.now() + timedelta(hours=1),
        )

    @cached_property
    def exception(self):
        with transaction.atomic():
            return exception_record(
                workspace=self.workspace,
                actor=SYSTEM,
                kind="anomaly",
                severity="high",
                what="victim anomaly",
                why="victim",
            )

    @cached_property
    def policy_version(self):
        """A policy version of A (a narrowing settings change, applied at once)."""
        document = export_document(self.workspace)
        document["settings"]["confirmation_ttl"] = 3600
        version = policy_apply(
            reason="test set-up", workspace=self.workspace, document=document, actor=SYSTEM
        ).version
        # Numbers are per workspace and B has versions of its own (every applied change
        # is one): number A's past all of them, so B asking for it must find nothing.
        others = PolicyVersion.objects.exclude(workspace=self.workspace).aggregate(
            top=Max("number")
        )["top"]
        if others and version.number <= others:
            PolicyVersion.objects.filter(pk=version.pk).update(number=others + 1)
            version.refresh_from_db()
        return version

    @cached_property
    def version(self):
        self.tool  # noqa: B018 - creating a tool writes a VersionLog
        return VersionLog.objects.filter(workspace=self.workspace).latest("pk")

    @cached_property
    def attachment(self):
        return attachment_add(
            workspace=self.workspace,
            target=self.exception,
            url="https://evidence.example.test/victim",
            sha256="a" * 64,
            title="victim evidence",
            actor=SYSTEM,
        )

    @cached_property
    def audit_entry(self):
        with transaction.atomic():
            event = EVENTS[AuditAction.ACTION_DECIDED].event(
                tool="victim.secret_tool",
                input={"params": {"victim": True}},
                decision="allowed",
                rationale="allowlist",
                outcome="allowed",
            )
            return audit_record(event, workspace=self.workspace, actor=SYSTEM)

    @cached_property
    def invitation(self):
        return invitation_create(
            reason="test set-up",
            workspace=self.workspace,
            user=self._make_user("victim-invitee@example.test"),
            role=Role.MEMBER,
            actor=SYSTEM,
        )

    @cached_property
    def connector(self):
        with operator_seeding():
            return Connector.objects.create(
                workspace=self.workspace, name="victimconn", url="https://victim.example.test/"
            )

    @cached_property
    def execution(self):
        return Execution.objects.create(
            workspace=self.workspace,
            action_request=self.action,
            connector=self.connector,
            upstream_tool="victim_upstream",
        )

    @cached_property
    def automation(self):
        return automation_settings_update(
            reason="test set-up", workspace=self.workspace, actor=SYSTEM, changes={}, operator=True
        )

    @cached_property
    def event(self):
        return NotificationEvent.objects.create(
            workspace=self.workspace,
            event="confirmation.requested",
            event_key=f"victim-{uuid.uuid4()}",
        )

    @cached_property
    def endpoint(self):
        with operator_seeding():  # set-up: a new endpoint sends somewhere new (governed)
            return WebhookEndpoint.objects.create(
                workspace=self.workspace,
                name="victim-hook",
                url="https://victim.example.test/hook",
                secret="s" * 32,
                created_by="tests",
            )

    @cached_property
    def webhook_delivery(self):
        return WebhookDelivery.objects.create(
            workspace=self.workspace, event=self.event, endpoint=self.endpoint
        )

    @cached_property
    def email_delivery(self):
        return EmailDelivery.objects.create(
            workspace=self.workspace,
            event=self.event,
            recipient="victim-admin@example.test",
            subject="victim subject",
            body_text="victim body",
        )

    @cached_property
    def export_destination(self):
        with operator_seeding():  # set-up: a new destination is governed
            return AuditExportDestination.objects.create(
                workspace=self.workspace, kind="file", directory="/tmp/victim-export"
            )

    @cached_property
    def export_batch(self):
        return AuditExportBatch.objects.create(
            workspace=self.workspace,
            kind="file",
            first_seq=1,
            last_seq=1,
            entries=1,
            sha256="b" * 64,
            target="victim-batch.jsonl",
        )

    @cached_property
    def anomaly(self):
        now = timezone.now()
        return AnomalyFinding.objects.create(
            workspace=self.workspace,
            key=self.key,
            kind="volume",
            window_start=now,
            window_end=now,
            exception_record=self.exception,
        )

    # OAuth (keys.oauth): A's grant for a client, and that grant's tokens.
    @cached_property
    def oauth_application(self):
        return get_application_model().objects.create(
            client_id=VICTIM_CLIENT,
            name="victim oauth client",
            client_type="public",
            authorization_grant_type="authorization-code",
            redirect_uris=OAUTH_REDIRECT,
        )

    @cached_property
    def oauth_grant(self):
        issued = key_create(
            reason="test set-up",
            workspace=self.workspace,
            name="OAuth: victim client",
            owner=self.owner,
            scopes=["actions:read"],
            tool_allowlist=["*"],
            actor=Actor.for_user(self.owner),
            oauth_application_id=self.oauth_application.pk,
        )
        get_application_model().objects.get_or_create(
            client_id=INTRUDER_CLIENT,
            defaults={
                "name": "intruder client",
                "client_type": "public",
                "authorization_grant_type": "authorization-code",
                "redirect_uris": OAUTH_REDIRECT,
            },
        )
        return issued.key

    def _oauth_token(self, model, **fields) -> str:
        raw = uuid.uuid4().hex + uuid.uuid4().hex
        token = model(application=self.oauth_grant.oauth_application, user=self.owner, **fields)
        set_token_value(token, raw)
        token.save()
        return raw

    @cached_property
    def oauth_access_token(self) -> str:
        return self._oauth_token(
            AccessToken,
            expires=timezone.now() + timedelta(hours=1),
            scope="actions:read",
            resource=["http://testserver/mcp"],
        )

    @cached_property
    def oauth_refresh_token(self) -> str:
        return self._oauth_token(RefreshToken)

    @cached_property
    def role_group(self):
        return Group.objects.get(name=role_group_name(self.workspace.pk, Role.OWNER))

    @cached_property
    def content_type_ref(self) -> str:
        """`/admin/r/<content type>/<object>/` names A's tool."""
        return f"{ContentType.objects.get_for_model(self.tool).pk}/{self.tool.pk}"

    def ref(self, row: Row) -> str:
        obj = getattr(self, row.target)
        return str(obj if row.ref == "self" else getattr(obj, row.ref))

    def markers(self, row: Row) -> set[str]:
        """What would betray A in an answer: ids and names, never short integers."""
        found = {self.workspace.slug, str(self.workspace.pk), "Workspace victim"}
        obj = getattr(self, row.target)
        user = getattr(obj, "user", None)
        if user is not None:
            found.add(user.email)
        for attr in ("pk", "name", "email", "prefix", "tool", "what"):
            value = getattr(obj, attr, None)
            if value is not None and not isinstance(value, int) and len(str(value)) >= 6:
                found.add(str(value))
        return found


def missing_like(value: str) -> str:
    """A value of the same kind as `value` that names nothing."""
    if re.fullmatch(r"[0-9a-f-]{36}", value):
        return str(uuid.uuid4())
    if "@" in value:
        return f"nobody-{uuid.uuid4().hex[:8]}@example.test"
    if value.startswith("ct_"):
        return "ct_" + "Z" * (len(value) - 3)
    if value.isdigit():
        return str(MISSING_INT)
    if "/" in value:  # content type / object
        return f"{value.split('/')[0]}/{uuid.uuid4()}"
    if value.startswith("victim-a"):
        return "no-such-workspace"
    return "nosuch." + "x" * max(1, len(value) - 7)


# --- the table ------------------------------------------------------------------

ROWS: list[Row] = []


def api(route, method, kind, target, *, path=None, **kw):
    ROWS.append(Row(route, method, kind, target, path or "/" + route, **kw))


def page(route, method, kind, target, *, path=None, **kw):
    ROWS.append(Row(route, method, kind, target, path or "/" + route, json=False, **kw))


def _api_object(route, method, target, body=None, ref="pk", **kw):
    path = "/" + re.sub(r"<[a-z]+:pk>", "{ref}", route)
    api(route, method, OBJECT, target, path=path, body=body, ref=ref, **kw)


def _page_form(route, target, path, body, **kw):
    """An admin page that shows a form for A's object (GET) and submits it (POST)."""
    for method in ("get", "post"):
        page(
            route, method, OBJECT, target, path=path, body=body if method == "post" else None, **kw
        )


# tenants
api(
    "api/v1/session",
    "post",
    OWN,
    "membership",
    body={"email": "victim-admin@example.test", "password": "not-theirs-1"},
    ok=(400, 401),
)
api("api/v1/session", "delete", OWN, "workspace", ok=(200, 204))
api("api/v1/whoami", "get", LIST, "workspace")
api("api/v1/workspace", "get", LIST, "workspace")
api(
    "api/v1/workspace",
    "patch",
    OWN,
    "workspace",
    body={"name": "Renamed by its own admin", "reason": "own"},
)
api(
    "api/v1/workspace",
    "patch",
    OBJECT,
    "workspace",
    body={"name": "Hijacked", "workspace_id": "{ref}"},
    expect=(403, "workspace_mismatch"),
)
# Deleting one's own workspace is governed: proposed (202) or refused, never A's.
api(
    "api/v1/workspace",
    "delete",
    OWN,
    "workspace",
    body={"reason": "own workspace"},
    ok=(200, 202, 204, 403),
)
api("api/v1/members", "get", LIST, "membership")
api(
    "api/v1/members",
    "post",
    OWN,
    "membership",
    body={
        "email": "new-{who}@example.test",
        "role": "member",
        "reason": "own",
    },  # {who}: key or session
    ok=(200, 201),
)
_api_object("api/v1/members/<uuid:pk>", "get", "membership")
_api_object("api/v1/members/<uuid:pk>", "patch", "membership", {"role": "member"})
_api_object("api/v1/members/<uuid:pk>", "patch", "membership", {"role": "emperor"})
_api_object("api/v1/members/<uuid:pk>", "delete", "membership")
api("api/v1/invitations", "get", LIST, "invitation")
_api_object("api/v1/invitations/<uuid:pk>/accept", "post", "invitation", {})
_api_object("api/v1/invitations/<uuid:pk>/decline", "post", "invitation", {})
# keys
api("api/v1/keys", "get", LIST, "key")
api(
    "api/v1/keys",
    "post",
    OWN,
    "key",
    body={"name": "bot", "scopes": ["actions:read"], "reason": "own"},
    ok=(200, 201),
)
api(
    "api/v1/keys",
    "post",
    OBJECT,
    "owner",
    ref="email",
    body={"name": "bot", "scopes": ["actions:read"], "owner": "{ref}"},
    expect=(400, "validation_error"),
)
api(
    "api/v1/keys",
    "get",
    OBJECT,
    "workspace",
    path="/api/v1/keys?workspace_id={ref}",
    expect=(403, "workspace_mismatch"),
)
api(
    "api/v1/keys",
    "get",
    OBJECT,
    "workspace",
    path="/api/v1/keys?workspace={ref}",
    expect=(403, "workspace_mismatch"),
)
api(
    "api/v1/keys",
    "get",
    OBJECT,
    "workspace",
    ref="slug",
    headers={"HTTP_X_WARDEN_WORKSPACE": "{ref}"},
    expect=(403, None),
)
# A method the route does not serve must not tell a foreign id from a missing one.
_api_object("api/v1/keys/<uuid:pk>", "put", "key", {}, expect=None)
_api_object("api/v1/keys/<uuid:pk>", "get", "key")
_api_object("api/v1/keys/<uuid:pk>", "patch", "key", {"unattended_mode": True})
_api_object("api/v1/keys/<uuid:pk>", "patch", "key", {"unattended_mode": False})
_api_object("api/v1/keys/<uuid:pk>/revoke", "post", "key", {"reason": "cross-tenant"})
_api_object("api/v1/keys/<uuid:pk>/rotate", "post", "key", {"grace_seconds": 0})
_api_object("api/v1/keys/<uuid:pk>/rotate", "post", "key", {"grace_seconds": "soon"})
_api_object("api/v1/keys/<uuid:pk>/claim", "post", "key", {})
# approvals: actions, tools, approvals
api(
    "api/v1/actions",
    "post",
    OBJECT,
    "tool",
    ref="name",
    body={"tool": "{ref}", "params": {"deal": 1}},
    expect=None,  # an unknown tool's refusal (tool_not_allowed), whatever it is
)
api(
    "api/v1/actions",
    "post",
    OBJECT,
    "workspace",
    body={"tool": "crm.update", "params": {}, "workspace_id": "{ref}"},
    expect=(403, "workspace_mismatch"),
)
api(
    "api/v1/actions",
    "post",
    OBJECT,
    "confirmation_token",
    ref="self",
    body={
        "tool": "crm.update",
        "params": {"deal": 2},
        "confirmed": True,
        "confirmation_token": "{ref}",
    },
    expect=(403, "confirmation_mismatch"),
)
_api_object("api/v1/actions/<uuid:pk>", "get", "action")
_api_object(
    "api/v1/actions/<uuid:pk>/result", "post", "action", {"status": "succeeded", "output": {}}
)
api("api/v1/tools", "get", LIST, "tool")
api(
    "api/v1/tools",
    "post",
    OWN,
    "tool",
    body={"name": "intruder.own_tool", "level": "read", "reason": "own"},
    ok=(200, 201, 202),
)
_api_object("api/v1/tools/<uuid:pk>", "get", "tool")
_api_object("api/v1/tools/<uuid:pk>", "patch", "tool", {"enabled": False})
_api_object("api/v1/tools/<uuid:pk>", "delete", "tool")
api("api/v1/approvals", "get", LIST, "confirmation")
_api_object("api/v1/approvals/<uuid:pk>/approve", "post", "confirmation", {"reason": "x"})
_api_object("api/v1/approvals/<uuid:pk>/deny", "post", "confirmation", {"reason": "x"})
# erasure: B naming A's request answers as if it did not exist
api(
    "api/v1/personal-data/erase",
    "post",
    OBJECT,
    "action",
    body={"action_ids": ["{ref}"], "reason": "x"},
    ref="pk",
)
# policy as code: B's document is B's; A's slug in a document is a mismatch
api("api/v1/policy", "get", LIST, "tool")
api("api/v1/policy/schema", "get", LIST, "tool")
for _route in ("api/v1/policy/plan", "api/v1/policy/apply"):
    api(
        _route,
        "post",
        OBJECT,
        "workspace",
        ref="slug",
        body={
            "document": {"apiVersion": "warden.dev/policy/v1", "workspace": "{ref}", "tools": []}
        },
        expect=(403, "workspace_mismatch"),
    )
api(
    "api/v1/policy/test",
    "post",
    OBJECT,
    "tool",
    ref="name",
    body={
        "cases": {
            "cases": [
                {
                    "given": {
                        "key": {"scopes": ["workspace:admin"], "allowlist": ["*"]},
                        "tool": "{ref}",
                    },
                    "expect": {"outcome": "allowed"},
                }
            ]
        }
    },
    expect=(200, None),
)
api("api/v1/policy/versions", "get", LIST, "policy_version")
api(
    "api/v1/policy/versions/<int:number>",
    "get",
    OBJECT,
    "policy_version",
    ref="number",
    path="/api/v1/policy/versions/{ref}",
)
api(
    "api/v1/policy/versions/<int:number>/rollback",
    "post",
    OBJECT,
    "policy_version",
    ref="number",
    path="/api/v1/policy/versions/{ref}/rollback",
    body={"reason": "cross-tenant"},
)
# audit
api("api/v1/audit", "get", LIST, "audit_entry", path="/api/v1/audit?page_size=500")
api(
    "api/v1/audit/exceptions",
    "get",
    LIST,
    "exception",
    path="/api/v1/audit/exceptions?page_size=500",
)
api("api/v1/audit/versions", "get", LIST, "version", path="/api/v1/audit/versions?page_size=500")
api(
    "api/v1/audit",
    "get",
    OBJECT,
    "workspace",
    path="/api/v1/audit?workspace={ref}",
    expect=(403, "workspace_mismatch"),
)
_api_object(
    "api/v1/audit/exceptions/<int:pk>/resolve",
    "post",
    "exception",
    {"reason": "x", "mitigation": "y"},
)
_api_object("api/v1/audit/exceptions/<int:pk>/attachments", "get", "exception")
_api_object(
    "api/v1/audit/exceptions/<int:pk>/attachments",
    "post",
    "exception",
    {"url": "https://intruder.example.test/x", "sha256": "c" * 64},
)
_api_object("api/v1/audit/versions/<int:pk>/attachments", "get", "version")
_api_object(
    "api/v1/audit/versions/<int:pk>/attachments",
    "post",
    "version",
    {"url": "https://intruder.example.test/x", "sha256": "c" * 64},
)
api("api/v1/privacy-summary", "get", LIST, "tool")
# gateway
api("api/v1/connectors", "get", LIST, "connector")
api(
    "api/v1/connectors",
    "post",
    OWN,
    "connector",
    body={"name": "intruderconn", "url": "https://intruder.example.test/mcp", "reason": "own"},
    ok=(200, 201, 202, 400, 403),  # governed, and the URL may be refused: never A's
)
_api_object("api/v1/connectors/<uuid:pk>", "get", "connector")
_api_object("api/v1/connectors/<uuid:pk>", "patch", "connector", {"enabled": False})
_api_object("api/v1/connectors/<uuid:pk>", "delete", "connector")
_api_object("api/v1/connectors/<uuid:pk>/sync", "post", "connector", {})
# oversight
api("api/v1/posture", "get", LIST, "key")
# A's recorded requests (and A's shadowed ones) are never replayed or reported for B.
api("api/v1/policy/simulate", "post", LIST, "action", body={})
api("api/v1/policy/shadow-report", "get", LIST, "action")
# /mcp: A's tools are not listed, calling one answers like an unknown tool
api(
    "mcp",
    "post",
    LIST,
    "tool",
    body={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
)
api(
    "mcp",
    "post",
    OBJECT,
    "tool",
    ref="name",
    body={
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "{ref}", "arguments": {"deal": 1}},
    },
    expect=None,
)
api("mcp", "get", OWN, "tool")
api("mcp", "delete", OWN, "tool")
# OAuth: A's grant is a key like the others; B's consent cannot name A's workspace, and
# B's client can neither refresh nor revoke A's tokens.
api("api/v1/keys", "get", LIST, "oauth_grant")
_api_object("api/v1/keys/<uuid:pk>", "get", "oauth_grant")
_api_object("api/v1/keys/<uuid:pk>/revoke", "post", "oauth_grant", {})
_OAUTH_QUERY = (
    f"response_type=code&client_id={INTRUDER_CLIENT}&redirect_uri={OAUTH_REDIRECT}"
    "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    "&scope=actions:read&state=s1"
)
page("oauth/authorize/", "get", LIST, "oauth_grant", path=f"/oauth/authorize/?{_OAUTH_QUERY}")
page(
    "oauth/authorize/",
    "post",
    OBJECT,
    "oauth_grant",
    ref="workspace_id",
    body={
        "response_type": "code",
        "client_id": INTRUDER_CLIENT,
        "redirect_uri": OAUTH_REDIRECT,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "scope": "actions:read",
        "state": "s1",
        "workspace": "{ref}",
        "granted_scopes": ["actions:read"],
        "tool_allowlist": "*",
        "allow": "on",
    },
    expect=None,
)
page(
    "oauth/token/",
    "post",
    OBJECT,
    "oauth_refresh_token",
    ref="self",
    body={
        "grant_type": "refresh_token",
        "refresh_token": "{ref}",
        "client_id": INTRUDER_CLIENT,
    },
    expect=None,
)
page(
    "oauth/revoke/",
    "post",
    OBJECT,
    "oauth_access_token",
    ref="self",
    body={"token": "{ref}", "client_id": INTRUDER_CLIENT},
    expect=None,
)
api(
    "oauth/register/",
    "post",
    OWN,
    "oauth_grant",
    body={"redirect_uris": [OAUTH_REDIRECT], "token_endpoint_auth_method": "none"},
    ok=(201,),
)
for _method in ("get", "put", "delete"):
    api(
        "oauth/register/<str:client_id>/",
        _method,
        OBJECT,
        "oauth_application",
        ref="client_id",
        path="/oauth/register/{ref}/",
        body={"redirect_uris": [OAUTH_REDIRECT]} if _method == "put" else None,
        expect=None,
    )

# admin: custom pages (approval queue, review link, posture, privacy summary, audit
# browser's verification, key object tools, exception resolution, attachments)
QUEUE = "admin/approvals/confirmationrequest/"
page(QUEUE, "get", LIST, "confirmation")
page(QUEUE, "get", OBJECT, "workspace", ref="slug", path=f"/{QUEUE}?workspace={{ref}}", expect=None)
page(
    f"{QUEUE}bulk-deny/",
    "post",
    OBJECT,
    "confirmation",
    body={"ids": ["{ref}"], "reason": "x"},
    expect=None,
)
page(f"{QUEUE}<uuid:pk>/", "get", OBJECT, "confirmation", path=f"/{QUEUE}{{ref}}/")
page(
    f"{QUEUE}<uuid:pk>/",
    "get",
    OBJECT,
    "confirmation",
    path=f"/{QUEUE}{{ref}}/?{QUERY_PARAMETER}=LINK",
    extra={"link": True},
)
page(
    f"{QUEUE}<uuid:pk>/email/<str:verdict>/",
    "get",
    OBJECT,
    "confirmation",
    path=f"/{QUEUE}{{ref}}/email/approve/?{QUERY_PARAMETER}=LINK",
    extra={"link": "approve"},
)
page(
    f"{QUEUE}<uuid:pk>/decide/",
    "post",
    OBJECT,
    "confirmation",
    path=f"/{QUEUE}{{ref}}/decide/",
    body={"verdict": "approve", "reason": "x"},
)
page("admin/posture/", "get", LIST, "key")
# Slack: the message preview of A's request; linking acts on one's own user only.
page(
    "admin/slack/preview/<uuid:pk>/",
    "get",
    OBJECT,
    "confirmation",
    path="/admin/slack/preview/{ref}/",
)
page("admin/slack/link/", "get", OWN, "workspace")
page("admin/slack/link/", "post", OWN, "workspace", body={"unlink": "1"})
page(
    "admin/posture/<slug:slug>/",
    "get",
    OBJECT,
    "workspace",
    ref="slug",
    path="/admin/posture/{ref}/",
)
page(
    "admin/posture/<slug:slug>/shadow/",
    "get",
    OBJECT,
    "workspace",
    ref="slug",
    path="/admin/posture/{ref}/shadow/",
)
AUDIT = "admin/audit/auditentry/"
page(
    f"{AUDIT}verify/",
    "get",
    OBJECT,
    "workspace",
    ref="slug",
    path=f"/{AUDIT}verify/?workspace={{ref}}",
)
page(f"{AUDIT}verify/", "post", OBJECT, "workspace", ref="slug", body={"workspace": "{ref}"})
page(f"{AUDIT}privacy-summary/", "get", LIST, "tool")
page(
    f"{AUDIT}privacy-summary/<slug:slug>/",
    "get",
    OBJECT,
    "workspace",
    ref="slug",
    path=f"/{AUDIT}privacy-summary/{{ref}}/",
)
page(
    f"{AUDIT}privacy-summary/<slug:slug>/pdf/",
    "get",
    OBJECT,
    "workspace",
    ref="slug",
    path=f"/{AUDIT}privacy-summary/{{ref}}/pdf/",
)
for verb, body in (
    ("revoke", {"reason": "x"}),
    ("rotate", {"grace_hours": "0"}),
    ("claim", {}),
    ("unsuspend", {"reason": "x"}),
    ("unattended", {"reason": "x"}),
):
    _page_form(
        f"admin/keys/machinekey/<path:object_id>/{verb}/",
        "key",
        f"/admin/keys/machinekey/{{ref}}/{verb}/",
        body,
        expect=None,
    )
_page_form(
    "admin/audit/exceptionrecord/<int:pk>/resolve/",
    "exception",
    "/admin/audit/exceptionrecord/{ref}/resolve/",
    {"reason": "x", "mitigation": "y"},
)
for model, target in (
    ("approvals/approvalrecord", "approval_record"),
    ("audit/exceptionrecord", "exception"),
    ("audit/versionlog", "version"),
):
    _page_form(
        f"admin/{model}/<path:object_id>/attach/",
        target,
        f"/admin/{model}/{{ref}}/attach/",
        {"url": "https://intruder.example.test/x", "sha256": "c" * 64},
    )
page("admin/", "get", LIST, "key")
page(
    "admin/^(?P<app_label>auth|tenants|keys|approvals|audit|notifications|gateway|oversight)/$",
    "get",
    LIST,
    "key",
    path="/admin/keys/",
)
page("admin/autocomplete/", "get", LIST, "membership", path="/admin/autocomplete/?term=victim")
page(
    "admin/r/<path:content_type_id>/<path:object_id>/",
    "get",
    OBJECT,
    "content_type_ref",
    ref="self",
    path="/admin/r/{ref}/",
    expect=None,
)
_page_form(
    "admin/auth/user/<id>/password/",
    "owner",
    "/admin/auth/user/{ref}/password/",
    {"password1": "Hijacked-123456", "password2": "Hijacked-123456"},
    expect=None,
)

# admin: every registered ModelAdmin's own views, for the object of A it shows.
ADMIN_OBJECTS = {
    "auth.group": "role_group",
    "auth.user": "owner",
    "tenants.workspace": "workspace",
    "tenants.membership": "membership",
    "keys.machinekey": "key",
    "approvals.tool": "tool",
    "approvals.actionrequest": "action",
    "approvals.confirmationrequest": "confirmation",
    "approvals.approvalrecord": "approval_record",
    "approvals.policyversion": "policy_version",
    "audit.auditentry": "audit_entry",
    "audit.exceptionrecord": "exception",
    "audit.versionlog": "version",
    "audit.evidenceattachment": "attachment",
    "notifications.workspaceautomationsettings": "automation",
    "notifications.webhookendpoint": "endpoint",
    "notifications.webhookdelivery": "webhook_delivery",
    "notifications.emaildelivery": "email_delivery",
    "oversight.auditexportdestination": "export_destination",
    "oversight.auditexportbatch": "export_batch",
    "oversight.anomalyfinding": "anomaly",
    "gateway.connector": "connector",
    "gateway.execution": "execution",
}
# Django's stock User and Group admins (any staff user: every workspace member with an
# admin role) check the permission after the existence on the history page: 403 for an
# existing user or group of another workspace, the "doesn't exist" redirect for a
# missing id. An existence oracle on user and group ids, nothing more is shown.
# Django's answer for an object outside the admin's queryset: 302 to the admin index
# ("… doesn't exist. Perhaps it was deleted?"), the same as for a missing id.
for label, model_admin in sorted(
    admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower
):
    opts = label._meta
    target = ADMIN_OBJECTS.get(opts.label_lower)
    if target is None:
        continue  # the meta-test names the model that has no object here
    base = f"admin/{opts.app_label}/{opts.model_name}/"
    if not hasattr(model_admin, "changelist_view") or base == QUEUE:
        continue
    obj = "<path:object_id>/"
    page(base, "get", LIST, target)
    page(
        base,
        "post",
        OBJECT,
        target,
        body={"action": "delete_selected", "_selected_action": ["{ref}"], "post": "yes"},
        expect=None,
    )
    page(f"{base}add/", "get", LIST, target)
    page(f"{base}add/", "post", OBJECT, "workspace", body={"workspace": "{ref}"}, expect=None)
    for suffix, methods in (
        ("history/", ("get",)),
        ("delete/", ("get", "post")),
        ("change/", ("get", "post")),
        ("", ("get",)),
    ):
        for method in methods:
            page(
                f"{base}{obj}{suffix}",
                method,
                OBJECT,
                target,
                path=f"/{base}{{ref}}/{suffix}",
                body={"post": "yes", "name": "Hijacked"} if method == "post" else None,
                expect=None,
            )


# --- enumeration and the meta-test ---------------------------------------------------


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def every_route() -> dict[str, set[str] | None]:
    """Each URL pattern of the project; for class-based views, the methods it serves
    (None: a function view, whose methods the rows declare)."""
    found: dict[str, set[str] | None] = {}
    for route, callback in _walk(get_resolver().url_patterns):
        view = getattr(callback, "view_class", None)
        methods = None
        if view is not None and not route.startswith("admin/"):
            methods = {
                m
                for m in view.http_method_names
                if m not in ("options", "head") and hasattr(view, m)
            }
        found[route] = methods
    return found


def covered_routes() -> dict[str, set[str]]:
    """The methods ROWS holds for each route."""
    covered: dict[str, set[str]] = {}
    for row in ROWS:
        covered.setdefault(row.route, set()).add(row.method)
    return covered


def test_every_route_and_method_is_in_the_matrix():
    routes = every_route()
    unknown = sorted(set(covered_routes()) - set(routes))
    assert not unknown, f"rows for routes that no longer exist: {unknown}"
    missing_models = sorted(
        model._meta.label_lower
        for model in admin.site._registry
        if model._meta.label_lower not in ADMIN_OBJECTS
    )
    assert not missing_models, (
        f"admin models with no object of A in ADMIN_OBJECTS: {missing_models}"
    )
    uncovered = uncovered_routes(routes)
    assert not uncovered, f"routes or methods with no row in the tenant matrix: {uncovered}"


def uncovered_routes(routes: dict[str, set[str] | None]) -> list[str]:
    """Routes (and methods of API views) neither in ROWS nor in EXCLUDED."""
    covered = covered_routes()
    uncovered = []
    for route, methods in routes.items():
        if route in EXCLUDED:
            continue
        if route not in covered:
            uncovered.append(route)
        elif methods is not None and methods - covered[route]:
            uncovered.append(f"{route} {sorted(methods - covered[route])}")
    return uncovered


class _NewView(APIView):
    def get(self, request):
        return None


def test_a_new_route_or_method_without_a_row_is_reported(monkeypatch):
    """The enumeration is live: a pattern added to the resolver, or a method added to a
    routed view, is reported until the table has a row for it."""
    resolver = get_resolver()
    new = URLPattern(RoutePattern("api/v1/new"), _NewView.as_view())
    monkeypatch.setattr(resolver, "url_patterns", [*resolver.url_patterns, new])
    assert uncovered_routes(every_route()) == ["api/v1/new"]
    monkeypatch.undo()
    routes = every_route()
    routes["api/v1/keys/<uuid:pk>"] = routes["api/v1/keys/<uuid:pk>"] | {"delete"}
    assert uncovered_routes(routes) == ["api/v1/keys/<uuid:pk> ['delete']"]


# --- the matrix -------------------------------------------------------------------


@functools.cache
def _workspace_models() -> tuple:
    """Every model with a `workspace` foreign key to Workspace."""
    found = []
    for model in apps.get_models():
        if model is Workspace:
            continue
        fields = {f.name: f for f in model._meta.concrete_fields}
        if "workspace" in fields and fields["workspace"].related_model is Workspace:
            found.append(model)
    return tuple(found)


def snapshot(workspace) -> dict:
    """Every row of every model that belongs to A (its audit chain, its head and its
    versions included), the workspace row itself and the users who are A's members."""
    state = {"workspace": list(Workspace.objects.filter(pk=workspace.pk).values())}
    for model in _workspace_models():
        state[model._meta.label] = list(
            model._base_manager.filter(workspace=workspace).order_by("pk").values()
        )
    users = Membership.objects.filter(workspace=workspace).values_list("user_id", flat=True)
    user_model = Membership._meta.get_field("user").related_model
    state["users"] = list(user_model.objects.filter(pk__in=list(users)).order_by("pk").values())
    return state


@pytest.fixture
def world(make_workspace, make_member, make_key, make_user):
    return World(make_workspace, make_member, make_key, make_user)


@pytest.fixture
def intruders(make_workspace, make_key):
    """B's machine key and B's owner, each as a client (B: live, writes on)."""
    workspace_b = make_workspace(slug="intruder-b", writes_enabled=True, mode="live")
    with operator_seeding():
        tool_create(
            reason="test set-up",
            workspace=workspace_b,
            actor=SYSTEM,
            name="crm.update",
            level="write",
            confirmation="always",
        )
    owner = Membership.objects.get(workspace=workspace_b, role=Role.OWNER).user
    _, plaintext = make_key(workspace_b, scopes=["workspace:admin"], owner=owner)
    key = APIClient()
    key.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    session = APIClient()
    session.force_login(owner)
    session.defaults["HTTP_X_WARDEN_WORKSPACE"] = workspace_b.slug
    return {"key": key, "session": session}


def _fill(value, ref, placeholder="{ref}"):
    if isinstance(value, str):
        return value.replace(placeholder, ref)
    if isinstance(value, list):
        return [_fill(v, ref, placeholder) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ref, placeholder) for k, v in value.items()}
    return value


def _send(client, row: Row, ref: str, link: str = "", who: str = ""):
    path = row.path.replace("{ref}", ref).replace("=LINK", f"={link}")
    call = getattr(client, row.method)
    body = _fill(_fill(row.body, who, "{who}"), ref)
    headers = _fill(row.headers, ref)
    if row.json:
        return (
            call(path, body, format="json", **headers)
            if body is not None
            else call(path, **headers)
        )
    return call(path, body, **headers) if body is not None else call(path, **headers)


def _answer(response, ref: str):
    """What the caller learns: status, where it is sent, the body; the reference it sent
    is blanked out (an echo of its own input is no leak)."""
    location = (response.get("Location") or "").replace(ref, "<REF>")
    if response.get("Content-Type", "").startswith("application/json"):
        return response.status_code, location, response.content.decode().replace(ref, "<REF>")
    # HTML pages carry per-request tokens (CSRF); their leaks are checked by markers.
    return response.status_code, location, None


@functools.cache
def _serves(route: str, principal: str) -> bool:
    """Whether the route accepts this kind of caller at all (admin pages: sessions;
    API views: their `principals`)."""
    if route.startswith("admin/"):
        return principal == "session"
    view = next(cb for name, cb in _walk(get_resolver().url_patterns) if name == route)
    accepted = getattr(view.view_class, "principals", ("key", "user"))
    return ("key" if principal == "key" else "user") in accepted


def _intrude(world: World, row: Row, principal: str, client, api_error) -> None:
    ref = world.ref(row)
    link = {True: "review_link", "approve": "approve_button"}.get(row.extra.get("link"))
    link = getattr(world, link) if link else ""  # built only when the row needs it
    foreign = _send(client, row, ref, link, principal)
    assert foreign.status_code < 500, foreign.content[:300]
    text = foreign.content.decode(errors="replace")
    hidden = world.markers(row)
    if row.kind == OBJECT:
        missing_ref = missing_like(ref)
        missing = _send(client, row, missing_ref, link, principal)
        assert _answer(foreign, ref) == _answer(missing, missing_ref)
        if row.expect is not None and _serves(row.route, principal):
            status, code = row.expect
            if row.json and code is None:
                assert foreign.status_code == status, foreign.content[:300]
            elif row.json:
                api_error(foreign, status, code)
            else:  # 404, or the admin's "doesn't exist" redirect to its index
                assert (foreign.status_code, foreign.get("Location")) in (
                    (status, None),
                    (302, "/admin/"),
                ), foreign.status_code
        hidden = hidden - {ref}
    elif _serves(row.route, principal) and row.json and row.route != "mcp":
        assert foreign.status_code in row.ok, text[:300]
    leaked = sorted(marker for marker in hidden if marker in text)
    assert not leaked, f"the answer shows A's {leaked}"


CASES = [
    pytest.param(
        row,
        id=f"{row.id} {row.kind}:{row.target}:{i}",
        marks=[pytest.mark.xfail(strict=True, reason=row.known)] if row.known else [],
    )
    for i, row in enumerate(ROWS)
]


@pytest.mark.parametrize("row", CASES)
def test_workspace_b_gets_nothing_of_workspace_a(world, intruders, row, api_error):
    """Both intruders, one after the other, against the same A (half the set-up)."""
    world.ref(row)  # build A's object before the snapshot
    before = snapshot(world.workspace)
    for principal in row.principals:
        try:
            _intrude(world, row, principal, intruders[principal], api_error)
        except AssertionError as failure:
            raise AssertionError(f"{principal} of B: {failure}") from failure
    assert snapshot(world.workspace) == before, "an intruder of B changed A"


# --- beyond the matrix: evidence across tenants -------------------------------------
# Cases the table cannot express: other roles, both ways of naming a workspace on
# every evidence list, a user in two workspaces, a cursor carried across.

EVIDENCE_LISTS = ("/api/v1/audit", "/api/v1/audit/exceptions", "/api/v1/audit/versions")


@pytest.fixture
def victim(make_workspace):
    workspace = make_workspace()
    append(workspace, 5, tool="victim.secret_tool")
    with transaction.atomic():
        exception_record(
            workspace=workspace, actor=AGENT, kind="anomaly", severity="high",
            what="victim anomaly", why="victim",
        )  # fmt: skip
    return workspace


@pytest.fixture
def intruder(make_workspace):
    workspace = make_workspace()
    append(workspace, 2)
    with transaction.atomic():
        exception_record(
            workspace=workspace, actor=AGENT, kind="denial", severity="low", what="own", why="own"
        )
    return workspace


def _leaks(body: dict, victim) -> list:
    text = str(body)
    return [marker for marker in (str(victim.pk), "victim") if marker in text]


@pytest.mark.parametrize("url", EVIDENCE_LISTS)
@pytest.mark.parametrize("how", ["header", "query"])
def test_key_naming_another_workspace_on_evidence_is_refused(
    victim, intruder, make_key, key_client, url, how
):
    _, plaintext = make_key(intruder, scopes=["audit:read"])
    client = key_client(plaintext)
    for ident in (str(victim.pk), victim.slug):
        if how == "header":
            response = client.get(url, HTTP_X_WARDEN_WORKSPACE=ident)
        else:
            response = client.get(url, {"workspace": ident})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "workspace_mismatch"
        assert _leaks(response.json(), victim) == []


@pytest.mark.parametrize("url", EVIDENCE_LISTS)
def test_other_workspaces_auditor_gets_nothing_of_this_one(
    victim, intruder, make_member, user_client, url
):
    auditor = make_member(intruder, Role.AUDITOR)
    own = user_client(auditor).get(url, {"page_size": 500})
    assert own.status_code == 200
    assert own.json()["results"]
    assert _leaks(own.json(), victim) == []
    for ident in (str(victim.pk), victim.slug):
        response = user_client(auditor).get(url, HTTP_X_WARDEN_WORKSPACE=ident)
        assert response.status_code == 403
        assert _leaks(response.json(), victim) == []


def test_member_of_both_sees_each_only_when_named_and_permitted(
    victim, intruder, make_user, user_client
):
    user = make_user()
    with operator_seeding():
        membership_add(
            reason="test set-up", workspace=victim, user=user, role=Role.MEMBER, actor=SYSTEM
        )
        membership_add(
            reason="test set-up", workspace=intruder, user=user, role=Role.AUDITOR, actor=SYSTEM
        )
    client = user_client(user)
    assert client.get("/api/v1/audit").json()["error"]["code"] == "workspace_required"
    mine = client.get("/api/v1/audit", HTTP_X_WARDEN_WORKSPACE=intruder.slug)
    assert mine.status_code == 200 and _leaks(mine.json(), victim) == []
    theirs = client.get("/api/v1/audit", HTTP_X_WARDEN_WORKSPACE=victim.slug)
    assert theirs.status_code == 403  # a member, but without view_audit there


def test_cursor_from_one_workspace_reveals_nothing_in_another(
    victim, intruder, make_key, key_client
):
    append(victim, 30)
    _, victim_plain = make_key(victim, scopes=["audit:read"])
    page = key_client(victim_plain).get("/api/v1/audit", {"page_size": 5}).json()
    _, intruder_plain = make_key(intruder, scopes=["audit:read"])
    replayed = key_client(intruder_plain).get(page["next"])
    assert replayed.status_code == 200
    assert _leaks(replayed.json(), victim) == []
    assert all(
        AuditEntry.objects.filter(workspace=intruder, seq=row["seq"]).exists()
        for row in replayed.json()["results"]
    )
