"""/admin/slack/ (config/urls.py): linking and the message preview."""

from django.contrib import admin
from django.urls import path

from notifications.slack import admin_views

urlpatterns = [
    path("link/", admin.site.admin_view(admin_views.link_view), name="slack_link"),
    path(
        "preview/<uuid:pk>/",
        admin.site.admin_view(admin_views.preview_view),
        name="slack_preview",
    ),
]
