"""A real OpenID Connect provider for the SSO tests: django-oauth-toolkit with OIDC on
(RS256 ID tokens, JWKS, userinfo), mounted under /idp/ by a test-only URLconf on the
same live server. The browser reaches it as another host (127.0.0.1 against the
relying party's localhost), so the provider's login session is not Warden's.

Its people are the provider's own accounts (Django users named `idp-…`, with no
Warden role); the claims it asserts (e-mail, whether verified) come from DIRECTORY,
as an identity provider's directory would say them."""

from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.template import RequestContext, Template
from django.urls import path
from oauth2_provider import views as dot
from oauth2_provider.oauth2_validators import OAuth2Validator

from config.urls import urlpatterns as warden_urlpatterns

# provider username -> the claims it asserts about that person
DIRECTORY: dict[str, dict] = {}


class DirectoryValidator(OAuth2Validator):
    oidc_claim_scope = None  # every claim below in the ID token and userinfo

    def get_additional_claims(self, request):
        return dict(DIRECTORY.get(request.user.username, {}))


LOGIN_PAGE = Template(
    "<!doctype html><title>Test identity provider</title><h1>Test identity provider</h1>"
    '<form method="post">{% csrf_token %}{{ form.as_p }}'
    '<input type="hidden" name="next" value="{{ next }}">'
    '<button type="submit" id="idp-login">Sign in</button></form>'
)


class ProviderLogin(auth_views.LoginView):
    """The provider's own login page (its accounts, its session)."""

    def render_to_response(self, context, **kwargs):
        return HttpResponse(LOGIN_PAGE.render(RequestContext(self.request, context)))


idp_urlpatterns = [
    path("idp/login/", ProviderLogin.as_view()),
    path("idp/authorize/", dot.AuthorizationView.as_view()),
    path("idp/token/", dot.TokenView.as_view()),
    path("idp/userinfo/", dot.UserInfoView.as_view()),
    path("idp/jwks/", dot.JwksInfoView.as_view()),
]

urlpatterns = idp_urlpatterns + list(warden_urlpatterns)
