"""OAuth 2.1 access tokens as machine keys (docs "Connecting with OAuth").

django-oauth-toolkit is the authorization server. A human's consent for a client
creates a MachineKey with credential "oauth" (keys.services.key_create with
`oauth_application`); the client's access tokens resolve to that key, one live grant
per client and human. So an OAuth-authenticated call is a key call: scopes, allowlist,
custody, rate limit, suspension, expiry and the audit actor apply unchanged, and
revoking the key ends its tokens.

A token is accepted only for the resource it was minted for (RFC 8707): its `resource`
must name this server's /mcp exactly; an unrestricted token is refused too.

Clients identify themselves either by a client ID metadata document (the MCP
authorization spec's preferred way since 2025-11-25: the client_id is an https URL of
a JSON document, fetched by `MetadataFetcher` under the shared outbound address policy)
or by dynamic client registration (RFC 7591, rate-limited per address). Either way a
redirect URI must be https, loopback http or an operator-listed private-use scheme
(`redirect_uri_problem`)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauth2_provider import cimd
from oauth2_provider.models import AccessToken
from oauth2_provider.settings import oauth2_settings

from common import attempts, egress
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


# --- redirect URIs ---------------------------------------------------------------------

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def redirect_uri_problem(uri) -> str | None:
    """Why a client may not register `uri` as a redirect URI, or None if it may: https
    with a host; http only to the loopback interface (RFC 8252 §7.3: 127.0.0.1, [::1],
    localhost, any port); a private-use scheme (RFC 8252 §7.1, reverse domain name such
    as com.example.app) only if the operator lists it in WARDEN_OAUTH_PRIVATE_USE_SCHEMES.
    Never a fragment (RFC 6749 §3.1.2)."""
    if not isinstance(uri, str) or not uri:
        return "A redirect URI must be a non-empty string."
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - an invalid port raises ValueError
    except ValueError:
        return "This redirect URI is not a valid URI."
    if parts.fragment or "#" in uri:
        return "A redirect URI must not contain a fragment."
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None if host else "An https redirect URI needs a host."
    if scheme == "http":
        if host in LOOPBACK_HOSTS:
            return None
        return (
            "An http redirect URI is allowed only for the loopback interface "
            "(127.0.0.1, [::1], localhost); use https."
        )
    if scheme and scheme in private_use_schemes():
        return None
    return (
        f"The redirect URI scheme {scheme or '(none)'!r} is not allowed: use https, "
        "loopback http, or a private-use scheme the operator allows."
    )


def private_use_schemes() -> frozenset[str]:
    """The operator's private-use schemes, reverse domain names only (RFC 8252 §7.1)."""
    return frozenset(s.lower() for s in settings.WARDEN_OAUTH_PRIVATE_USE_SCHEMES if "." in s)


def redirect_uris_problem(metadata) -> str | None:
    """The first problem of a registration's `redirect_uris`, or None (a body that is
    not an object, or has no list of strings, is the library's to refuse)."""
    if not isinstance(metadata, dict):
        return None
    uris = metadata.get("redirect_uris")
    if not isinstance(uris, list):
        return None
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem is not None:
            return problem
    return None


# --- registration rate limit -------------------------------------------------------------

REGISTRATION_WINDOW_SECONDS = 3600


def registration_wait(request) -> int | None:
    """Counts one registration from the caller's address; seconds to wait when it is
    over WARDEN_OAUTH_REGISTRATIONS_PER_HOUR in this hour (0: unlimited), else None."""
    limit = settings.WARDEN_OAUTH_REGISTRATIONS_PER_HOUR
    if not limit:
        return None
    counter = attempts.Counter(
        kind="oauth-registration",
        identity=client_ip(request) or "",
        limit=limit,
        window_seconds=REGISTRATION_WINDOW_SECONDS,
    )
    now = time.time()
    wait = attempts.exhausted([counter], now)
    if wait is not None:
        return wait
    attempts.add_failures([counter], now)
    return None


# --- client ID metadata documents ---------------------------------------------------------


def is_metadata_document_client(application) -> bool:
    return application.registration_source == application.RegistrationSource.CIMD


class MetadataFetcher(cimd.SafeMetadataFetcher):
    """Fetches a client ID metadata document (django-oauth-toolkit's CIMD_METADATA_FETCHER)
    under Warden's outbound address policy (common.egress: no special-purpose address,
    IPv6 embeddings included, checked on the resolved address that is then connected
    to, so DNS cannot rebind it), https with certificate verification, no redirects,
    one deadline for the whole fetch (CIMD_FETCH_TIMEOUT_SECONDS) and a size bound
    (CIMD_MAX_DOCUMENT_SIZE). The library checks that the document's client_id is the
    URL, that the client is public, and caches it (Cache-Control, 5 min to 1 day, a
    failure backs off 60 s); this also refuses redirect URIs `redirect_uri_problem`
    refuses. `trusted_networks` and `ssl_context` are the seams tests use to reach a
    local HTTPS server."""

    trusted_networks: tuple = ()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context()

    def addresses(self, host: str, port: int) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as error:
            raise cimd.CIMDError(f"could not resolve the client_id host: {error}") from error
        found = []
        for info in infos:
            ip = egress.parse_address(info[4][0])
            if ip is None or not egress.address_allowed(ip, self.trusted_networks):
                # One refused address refuses the host: a split answer cannot smuggle
                # a connection to an internal service.
                raise cimd.CIMDError("the client_id host resolves to a refused address")
            found.append(str(ip))
        if not found:
            raise cimd.CIMDError("the client_id host did not resolve")
        return found

    def fetch(self, client_id):
        parsed = cimd._validate_client_id_url(client_id)
        port = parsed.port or 443
        deadline = time.monotonic() + oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS
        ips = self.addresses(parsed.hostname, port)
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        context = self.ssl_context()
        document, last_error = None, None
        for ip in ips:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                document = self._fetch_from(ip, port, parsed, path, context, remaining)
                break
            except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as error:
                last_error = error
        if document is None:
            raise cimd.CIMDError(f"could not fetch the client_id document: {last_error}")
        problem = redirect_uris_problem(document[0])
        if problem is not None:
            raise cimd.CIMDError(problem)
        return document

    def _fetch_from(self, ip, port, parsed, path, context, remaining):
        # Connect to the address just checked; SNI, the certificate and Host name the
        # client_id's host. A socket timeout bounds each read, not the whole: a server
        # that trickles its headers or body is cut when the deadline's timer shuts the
        # socket down.
        conn = urllib3.connection.HTTPSConnection(
            ip,
            port,
            timeout=remaining,
            ssl_context=context,
            server_hostname=parsed.hostname,
            assert_hostname=parsed.hostname,
        )
        timer = threading.Timer(remaining, _shut_down, args=(conn,))
        timer.daemon = True
        timer.start()
        try:
            conn.request(
                "GET",
                path,
                headers={"Host": parsed.netloc, "Accept": "application/json"},
                preload_content=False,
            )
            return self._read_document(conn.getresponse())
        finally:
            timer.cancel()
            conn.close()


def _shut_down(conn) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)
