from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from common.views import not_found
from gateway.api.mcp import MCPView
from notifications.slack import views as slack_views
from oversight.admin_urls import privacy_urlpatterns

api_v1 = [
    path("", include("tenants.api.urls")),
    path("", include("keys.api.urls")),
    path("", include("approvals.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("gateway.api.urls")),
    path("", include("oversight.api.urls")),
]

urlpatterns = [
    path("admin/posture/", include("oversight.admin_urls")),
    # The privacy summary's pages (oversight) kept the address they had in the audit browser.
    path("admin/audit/auditentry/privacy-summary/", include(privacy_urlpatterns)),
    path("admin/slack/", include("notifications.slack.admin_urls")),
    path("admin/", admin.site.urls),
    # OpenID Connect single sign-on (tenants.sso): 404 unless WARDEN_OIDC_ENABLED.
    path("oidc/", include("tenants.admin_sso")),
    path("api/v1/", include(api_v1)),
    path("mcp", MCPView.as_view(), name="mcp"),
    # Slack's interactivity request URL: Slack signs it; no key, no session (docs "Slack").
    path("integrations/slack/interactions", slack_views.interactions, name="slack_interactions"),
    # OAuth 2.1 for MCP clients: metadata (RFC 8414, RFC 9728), registration, consent,
    # token, revocation (keys.api.oauth).
    path("", include("keys.api.oauth_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and Redoc come from drf-spectacular-sidecar's static files (no CDN).
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    # JSON 404 for unknown API paths, for every method, even with DEBUG on (Django's
    # debug page is HTML). CSRF-exempt: it changes nothing, and a POST to a mistyped
    # path must say not_found, not "CSRF check failed".
    re_path(r"^api/", csrf_exempt(not_found)),
]

handler404 = "common.views.not_found"
handler500 = "common.views.internal_error"
handler400 = "common.views.bad_request"
handler403 = "common.views.permission_denied"
