"""The single sign-on routes (/oidc/authenticate/, /oidc/callback/): mozilla-django-oidc's
views, answering 404 unless the deployment switched SSO on (WARDEN_OIDC_ENABLED)."""

from django.conf import settings
from django.http import Http404
from django.urls import path
from mozilla_django_oidc import views as oidc


def _only_when_enabled(view):
    def wrapper(request, *args, **kwargs):
        if not settings.WARDEN_OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return view(request, *args, **kwargs)

    return wrapper


urlpatterns = [
    path(
        "authenticate/",
        _only_when_enabled(oidc.OIDCAuthenticationRequestView.as_view()),
        name="oidc_authentication_init",
    ),
    path(
        "callback/",
        _only_when_enabled(oidc.OIDCAuthenticationCallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
]
