"""Admin pages of the oversight layer, mounted under /admin/posture/ (config/urls.py)
and wrapped like every admin view (login, staff, CSRF)."""

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
