from django.urls import path

from audit.api import views

urlpatterns = [
    path("audit", views.AuditEntryListView.as_view(), name="audit-list"),
    path("audit/exceptions", views.ExceptionRecordListView.as_view(), name="audit-exceptions"),
    path(
        "audit/exceptions/<int:pk>/resolve",
        views.ExceptionResolveView.as_view(),
        name="audit-exception-resolve",
    ),
    path(
        "audit/exceptions/<int:pk>/attachments",
        views.ExceptionAttachmentsView.as_view(),
        name="audit-exception-attachments",
    ),
    path("audit/versions", views.VersionLogListView.as_view(), name="audit-versions"),
    path(
        "audit/versions/<int:pk>/attachments",
        views.VersionLogAttachmentsView.as_view(),
        name="audit-version-attachments",
    ),
]
