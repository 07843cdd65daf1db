"""The OAuth 2.1 edge for MCP clients (docs "Connecting with OAuth").

django-oauth-toolkit serves the protocol (RFC 8414 metadata, dynamic client
registration, token, refresh, revocation, PKCE S256). Warden adds two things: the
protected-resource metadata of /mcp, and the consent page, where a logged-in human
picks the workspace, the scopes and the tool allowlist. The consent becomes a machine
key through the same checks and the same door as any key (keys.services.check_mintable,
approvals.door.governed_change): a scope that changes governance waits for a second
person, and nothing the human could not hand out as a key is ever granted."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import JsonResponse
from django.template.response import TemplateResponse
from oauth2_provider.forms import AllowForm
from oauth2_provider.models import get_application_model
from oauth2_provider.views import (
    AuthorizationView,
    DynamicClientRegistrationManagementView,
    DynamicClientRegistrationView,
    OAuthProtectedResourceMetadataView,
)

from approvals import door, proposals
from common.actor import Actor
from common.errors import WardenError
from common.scopes import ALL_SCOPES
from keys import oauth
from keys import services as key_services
from keys.validation import clean_tool_allowlist
from tenants.models import Membership

CONSENT_TEMPLATE = "oauth/consent.html"
PENDING_TEMPLATE = "oauth/pending.html"


class ProtectedResourceMetadataView(OAuthProtectedResourceMetadataView):
    """RFC 9728 metadata of /mcp, at the root and at the path-suffixed well-known URI:
    both name /mcp, the one resource tokens are bound to."""

    def get_resource(self, request):
        return oauth.mcp_resource(request)


def _redirect_uris_refusal(request) -> JsonResponse | None:
    """RFC 7591 §3.2.2 `invalid_redirect_uri` for a redirect URI outside the policy
    (keys.oauth.redirect_uri_problem); the library answers any other bad metadata."""
    try:
        metadata = json.loads(request.body or b"{}")
    except ValueError:
        return None
    problem = oauth.redirect_uris_problem(metadata)
    if problem is None:
        return None
    return JsonResponse({"error": "invalid_redirect_uri", "error_description": problem}, status=400)


class RegistrationView(DynamicClientRegistrationView):
    """Dynamic client registration (RFC 7591): at most WARDEN_OAUTH_REGISTRATIONS_PER_HOUR
    per client address (429 `rate_limited` with Retry-After), redirect URIs as the
    policy allows."""

    def post(self, request, *args, **kwargs):
        wait = oauth.registration_wait(request)
        if wait is not None:
            return JsonResponse(
                {
                    "error": "rate_limited",
                    "error_description": "Too many client registrations from this address.",
                },
                status=429,
                headers={"Retry-After": str(wait)},
            )
        return _redirect_uris_refusal(request) or super().post(request, *args, **kwargs)


class RegistrationManagementView(DynamicClientRegistrationManagementView):
    """RFC 7592 read/update/delete with the registration token: an update's redirect URIs
    meet the same policy as a registration's."""

    def put(self, request, *args, **kwargs):
        return _redirect_uris_refusal(request) or super().put(request, *args, **kwargs)


def _memberships(user):
    return (
        Membership.objects.filter(user=user, workspace__deleted_at__isnull=True)
        .select_related("workspace")
        .order_by("workspace__name")
    )


class ConsentForm(AllowForm):
    workspace = forms.ChoiceField(choices=())
    granted_scopes = forms.MultipleChoiceField(
        choices=sorted((s, s) for s in ALL_SCOPES), required=False
    )
    tool_allowlist = forms.CharField(
        required=False,
        help_text="Patterns such as crm.* or email.send, separated by spaces; empty: no tool.",
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].choices = [
            (str(m.workspace_id), f"{m.workspace.name} ({m.role})") for m in _memberships(user)
        ]


class ConsentView(AuthorizationView):
    """GET shows what the client asks; POST grants it as a key, or files it for a second
    person when it changes governance, or refuses what the human may not hand out."""

    template_name = CONSENT_TEMPLATE
    form_class = ConsentForm
    http_method_names = ["get", "post", "head", "options"]  # no PUT (FormView has one)
    redirect_field_name = REDIRECT_FIELD_NAME

    def get(self, request, *args, **kwargs):
        # Consent is asked every time: no client may skip it with approval_prompt=auto.
        request.GET = request.GET.copy()
        request.GET.pop("approval_prompt", None)
        if request.GET.get("resource") and request.GET.get("resource") != oauth.mcp_resource(
            request
        ):
            return self._refuse(
                None, "invalid_target", "This server issues tokens for its /mcp only."
            )
        return super().get(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def get_initial(self):
        initial = super().get_initial()
        initial["granted_scopes"] = (initial.get("scope") or "").split()
        return initial

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        client_id = (
            form.data.get("client_id") if form is not None and form.is_bound else None
        ) or (self.oauth2_data.get("client_id"))
        if "application" not in context and client_id:
            context["application"] = (
                get_application_model().objects.filter(client_id=client_id).first()
            )
        context["resource"] = oauth.mcp_resource(self.request)
        # MCP authorization (2025-11-25), "Localhost Redirect URI Risks": the redirect's
        # host is shown plainly, a loopback one with a warning, and a metadata
        # document's host beside the name it claims.
        redirect = (form["redirect_uri"].value() if form is not None else None) or ""
        context["redirect_host"] = urlsplit(redirect).hostname or redirect
        context["loopback_redirect"] = context["redirect_host"] in oauth.LOOPBACK_HOSTS
        application = context.get("application")
        if application is not None and oauth.is_metadata_document_client(application):
            context["client_document_host"] = urlsplit(application.client_id).hostname
        return context

    def _refuse(self, form, code: str, message: str, status: int = 403):
        context = self.get_context_data(form=form) if form is not None else {}
        context.update(refusal_code=code, refusal=message)
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def form_valid(self, form):
        data = form.cleaned_data
        application = get_application_model().objects.filter(client_id=data["client_id"]).first()
        if application is None or not data.get("allow"):
            return super().form_valid(form)  # an unknown client, or access_denied
        resource = oauth.mcp_resource(self.request)
        if (data.get("resource") or resource) != resource:
            return self._refuse(
                form, "invalid_target", "This server issues tokens for its /mcp only."
            )
        requested = set((data.get("scope") or "").split())
        scopes = sorted(set(data.get("granted_scopes") or ()))
        if not scopes:
            return self._refuse(form, "validation_error", "Choose at least one scope.", 400)
        if not set(scopes) <= requested:
            wider = sorted(set(scopes) - requested)[0]
            return self._refuse(
                form, "forbidden_by_scope", f"The client did not ask for the scope {wider}."
            )
        user = self.request.user
        membership = _memberships(user).filter(workspace_id=data["workspace"]).first()
        if membership is None:  # a choice the form offered, since removed
            return self._refuse(form, "not_found", "Not found.", 404)
        workspace = membership.workspace
        actor = Actor.for_request(self.request)
        try:
            allowlist = clean_tool_allowlist((data.get("tool_allowlist") or "").split())
            fields = {
                "name": f"OAuth: {application.name or application.client_id}"[:100],
                "scopes": scopes,
                "tool_allowlist": allowlist,
            }
            key = oauth.grant_reusable(
                application=application,
                user=user,
                workspace=workspace,
                scopes=scopes,
                tool_allowlist=allowlist,
            )
            if key is None:
                # What the human could never hand out as a key is refused before anyone
                # is asked to approve it.
                key_services.check_mintable(workspace=workspace, actor=actor, fields=fields)
                result = door.governed_change(
                    workspace=workspace,
                    actor=actor,
                    proposal=proposals.key_create(
                        workspace, user, {**fields, "oauth_application_id": application.pk}
                    ),
                    reason=f"OAuth consent for the client {application.client_id}",
                )
                if not result.applied:
                    return TemplateResponse(
                        self.request,
                        PENDING_TEMPLATE,
                        {
                            "application": application,
                            "workspace": workspace,
                            "scopes": scopes,
                            "operations": result.operations,
                            "action_id": getattr(result.outcome.action, "pk", None),
                        },
                        status=202,
                    )
        except WardenError as error:
            return self._refuse(form, error.code, error.message, error.status)
        data["scope"] = " ".join(scopes)
        data["resource"] = resource
        return super().form_valid(form)
