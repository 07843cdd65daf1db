"""`Authorization: Bearer wdn_<prefix>_<secret>`: one indexed lookup by prefix and a
constant-time digest compare. A wrong secret or a disallowed IP answers exactly like
an unknown key (`invalid_key`): no oracle."""

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from rest_framework import authentication, exceptions

from common.net import client_ip
from keys import guessing
from keys import secrets as key_secrets
from keys.lookup import key_by_prefix
from keys.models import MachineKey
from keys.services import key_touch
from keys.validation import ip_allowed


class KeyAuthFailed(exceptions.AuthenticationFailed):
    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


def _invalid() -> KeyAuthFailed:
    return KeyAuthFailed("invalid_key", "Invalid API key.")


class MachineKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    @sensitive_variables("header", "parts", "parsed", "secret")
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword.lower():
            raise KeyAuthFailed(
                "invalid_key", "Unsupported Authorization header; use: Bearer wdn_<key>."
            )
        parsed = key_secrets.parse_key(parts[1]) if len(parts) == 2 else None
        ip, prefix = client_ip(request), parsed[0] if parsed else None
        guessing.refuse_if_throttled(ip=ip, prefix=prefix)  # before any digest is checked
        if parsed is None:
            raise self._guessed(request, ip, None)
        prefix, secret = parsed
        key = key_by_prefix(prefix)
        now = timezone.now()
        if key is None or not self._secret_matches(key, secret, now):
            raise self._guessed(request, ip, prefix)
        if not ip_allowed(ip, key.allowed_ips):
            raise self._guessed(request, ip, prefix)
        if key.workspace.deleted_at is not None:
            raise _invalid()
        if key.revoked_at is not None:
            raise KeyAuthFailed("key_revoked", "This key has been revoked.")
        if key.suspended_at is not None:
            raise KeyAuthFailed("key_revoked", "This key is suspended pending review.")
        if key.is_expired(now):
            raise KeyAuthFailed("key_expired", "This key has expired.")
        key_touch(key, now)
        return (key.owner, key)

    @staticmethod
    def _guessed(request, ip: str | None, prefix: str | None) -> KeyAuthFailed:
        """A failure that looks like guessing: counted (keys.guessing), then invalid_key."""
        guessing.record_failure(ip=ip, prefix=prefix, request_id=getattr(request, "request_id", ""))
        return _invalid()

    @staticmethod
    @sensitive_variables("secret")
    def _secret_matches(key: MachineKey, secret: str, now) -> bool:
        if key_secrets.digests_match(secret, key.digest):
            return True
        return bool(
            key.previous_valid_until
            and key.previous_valid_until > now
            and key_secrets.digests_match(secret, key.previous_digest)
        )

    def authenticate_header(self, request) -> str:
        return self.keyword
