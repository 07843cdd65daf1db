from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from common.views import not_found
from gateway.api.mcp import MCPView

api_v1 = [
    path("", include("tenants.api.urls")),
    path("", include("keys.api.urls")),
    path("", include("approvals.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("gateway.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("mcp", MCPView.as_view(), name="mcp"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # JSON 404 for unknown API paths even with DEBUG on (Django's debug page is HTML).
    re_path(r"^api/", not_found),
]

handler404 = "common.views.not_found"
handler500 = "common.views.internal_error"
handler400 = "common.views.bad_request"
handler403 = "common.views.permission_denied"
