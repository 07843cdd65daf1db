"""Admin pages of the oversight layer, mounted under /admin/posture/ and (the privacy
summary's, at the address they had under the audit browser)
/admin/audit/auditentry/privacy-summary/ (config/urls.py), wrapped like every admin
view (login, staff, CSRF)."""

from django.contrib import admin
from django.urls import path

from oversight import admin_views

urlpatterns = [
    path("", admin.site.admin_view(admin_views.posture_index_view), name="posture_admin"),
    path(
        "<slug:slug>/",
        admin.site.admin_view(admin_views.posture_view),
        name="posture_admin_workspace",
    ),
    path(
        "<slug:slug>/shadow/",
        admin.site.admin_view(admin_views.shadow_view),
        name="shadow_admin_workspace",
    ),
]

privacy_urlpatterns = [
    path("", admin.site.admin_view(admin_views.privacy_index_view), name="privacy_summary"),
    path(
        "<slug:slug>/",
        admin.site.admin_view(admin_views.privacy_summary_view),
        name="privacy_summary_workspace",
    ),
    path(
        "<slug:slug>/pdf/",
        admin.site.admin_view(admin_views.privacy_pdf_view),
        name="privacy_summary_pdf",
    ),
]
