"""OpenID Connect single sign-on (mozilla-django-oidc) for the admin and the session API.

A person is mapped to an existing Warden user by e-mail, and only by an e-mail the
provider says it verified (`email_verified` true): an unverified address could be
anyone's. No user is created unless the deployment allows it
(WARDEN_OIDC_CREATE_USERS); a created user has no workspace and so may do nothing until
someone adds them. Roles and permissions stay Warden's (guardian): the provider says
who someone is, never what they may do."""

from __future__ import annotations

import logging

from django.conf import settings
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

logger = logging.getLogger("warden.sso")


def _verified_email(claims: dict) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        return ""
    return email.strip() if claims.get("email_verified") is True else ""


class WardenOIDCBackend(OIDCAuthenticationBackend):
    def authenticate(self, request, **kwargs):
        if not settings.WARDEN_OIDC_ENABLED:
            return None
        return super().authenticate(request, **kwargs)

    def verify_claims(self, claims):
        if not _verified_email(claims):
            logger.info("SSO login refused: the provider did not verify the e-mail address")
            return False
        return super().verify_claims(claims)

    def filter_users_by_claims(self, claims):
        email = _verified_email(claims)
        if not email:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(email__iexact=email, is_active=True)

    def create_user(self, claims):
        if not settings.WARDEN_OIDC_CREATE_USERS:  # belt and braces: OIDC_CREATE_USER too
            return None
        email = _verified_email(claims)
        return self.UserModel.objects.create_user(username=email, email=email)

    def update_user(self, user, claims):
        return user  # names and roles are Warden's; the provider only proves identity

    # It authenticates only: permissions stay with ModelBackend and guardian, so every
    # permission check does not run twice through this backend (it is always listed).
    def get_user_permissions(self, user_obj, obj=None):
        return set()

    def get_group_permissions(self, user_obj, obj=None):
        return set()

    def get_all_permissions(self, user_obj, obj=None):
        return set()

    def has_perm(self, user_obj, perm, obj=None):
        return False

    def has_module_perms(self, user_obj, app_label):
        return False


def login_context(request) -> dict:
    """Context processor for the login page: offer SSO, hide the password form when off."""
    return {
        "sso_enabled": settings.WARDEN_OIDC_ENABLED,
        "local_passwords": settings.WARDEN_LOCAL_PASSWORDS,
    }
