"""OAuth 2.1 access tokens as machine keys (README "Connecting with OAuth").

django-oauth-toolkit is the authorization server. A human's consent for a client
creates a MachineKey with credential "oauth" (keys.services.key_create with
`oauth_application`); the client's access tokens resolve to that key, one live grant
per client and human. So an OAuth-authenticated call is a key call: scopes, allowlist,
custody, rate limit, suspension, expiry and the audit actor apply unchanged, and
revoking the key ends its tokens.

A token is accepted only for the resource it was minted for (RFC 8707): its `resource`
must name this server's /mcp exactly; an unrestricted token is refused too."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauth2_provider.models import AccessToken

from common.net import client_ip
from keys import guessing
from keys.authentication import KeyAuthFailed, MachineKeyAuthentication
from keys.models import MachineKey
from keys.services import key_touch
from keys.validation import ip_allowed

KEY_PREFIX = "wdn_"
MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"
# What an MCP client asks for when it has no other hint: the agent scopes.
MCP_SCOPES = ("actions:read", "actions:write", "actions:external")
REGISTRABLE_GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})


def mcp_resource(request) -> str:
    """The canonical URI of /mcp, the audience every token must be bound to."""
    if settings.WARDEN_OAUTH_RESOURCE:
        return settings.WARDEN_OAUTH_RESOURCE.rstrip("/")
    return request.build_absolute_uri(MCP_PATH)


def resource_metadata_url(request) -> str:
    """RFC 9728 path-suffixed metadata of /mcp (the form MCP clients try first)."""
    resource = mcp_resource(request)
    scheme, _, rest = resource.partition("://")
    host, _, path = rest.partition("/")
    return f"{scheme}://{host}{METADATA_PATH}/{path}".rstrip("/")


def challenge(request, error: str = "") -> str:
    """The WWW-Authenticate value of a 401 from /mcp (MCP authorization, RFC 9728 §5.1)."""
    parts = [
        f'resource_metadata="{resource_metadata_url(request)}"',
        f'scope="{" ".join(MCP_SCOPES)}"',
    ]
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ", ".join(parts)


def _invalid_token(message: str = "Invalid or expired access token.") -> KeyAuthFailed:
    return KeyAuthFailed("invalid_token", message)


def grant_key(*, application_id, user_id) -> MachineKey | None:
    """The live key a client's tokens act as for this human."""
    if application_id is None or user_id is None:
        return None
    return (
        MachineKey.objects.select_related("workspace", "owner")
        .filter(
            oauth_application_id=application_id,
            owner_id=user_id,
            credential=MachineKey.Credential.OAUTH,
            revoked_at__isnull=True,
        )
        .first()
    )


def grant_reusable(*, application, user, workspace, scopes, tool_allowlist) -> MachineKey | None:
    """A live grant that is exactly what the human consents to again (a reconnect, or
    the key a governed consent created once it was approved)."""
    key = grant_key(application_id=application.pk, user_id=user.pk)
    if (
        key is None
        or key.workspace_id != workspace.pk
        or sorted(key.scopes) != sorted(scopes)
        or list(key.tool_allowlist) != list(tool_allowlist)
        or key.suspended_at is not None
        or key.is_expired()
    ):
        return None
    return key


class OAuthOrKeyAuthentication(MachineKeyAuthentication):
    """`Bearer wdn_…` is a machine key as before; any other bearer value is an OAuth
    access token, which authenticates as its grant's key. A 401 carries the MCP
    challenge: where the protected-resource metadata is and what scope to ask for."""

    @sensitive_variables("header", "parts", "token", "checksum")
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer" or parts[1].startswith(KEY_PREFIX):
            return super().authenticate(request)
        token = parts[1]
        ip = client_ip(request)
        guessing.refuse_if_throttled(ip=ip, prefix=None)
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        access = (
            AccessToken.objects.select_related("application")
            .filter(token_checksum=checksum)
            .first()
        )
        if access is None:
            guessing.record_failure(
                ip=ip, prefix=None, request_id=getattr(request, "request_id", "")
            )
            raise _invalid_token()
        if access.is_expired():
            raise _invalid_token()
        if mcp_resource(request) not in (access.resource or []):
            raise _invalid_token("This access token was not issued for this resource.")
        key = grant_key(application_id=access.application_id, user_id=access.user_id)
        if key is None or key.workspace.deleted_at is not None:
            raise _invalid_token("The grant behind this access token has been revoked.")
        if not ip_allowed(ip, key.allowed_ips):
            raise _invalid_token()
        if key.suspended_at is not None:
            raise KeyAuthFailed("key_revoked", "This key is suspended pending review.")
        now = timezone.now()
        if key.is_expired(now):
            raise KeyAuthFailed("key_expired", "This key has expired.")
        key_touch(key, now)
        return (key.owner, key)

    def authenticate_header(self, request) -> str:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        return challenge(request, "invalid_token" if header else "")


class RegistrationPermission:
    """Dynamic client registration (RFC 7591) for OAuth-only MCP clients: open unless
    WARDEN_OAUTH_OPEN_REGISTRATION is off, and only for the authorization-code grant
    (a client-credentials client would act as nobody)."""

    def has_permission(self, request) -> bool:
        if not settings.WARDEN_OAUTH_OPEN_REGISTRATION:
            return False
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return True  # the view answers invalid_client_metadata
        grant_types = (
            data.get("grant_types", ["authorization_code"]) if isinstance(data, dict) else []
        )
        return isinstance(grant_types, list) and set(grant_types) <= REGISTRABLE_GRANT_TYPES
