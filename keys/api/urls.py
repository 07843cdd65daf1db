from django.urls import path

from keys.api import views

urlpatterns = [
    path("keys", views.KeyListView.as_view(), name="key-list"),
    path("keys/<uuid:pk>", views.KeyDetailView.as_view(), name="key-detail"),
    path("keys/<uuid:pk>/revoke", views.KeyRevokeView.as_view(), name="key-revoke"),
    path("keys/<uuid:pk>/rotate", views.KeyRotateView.as_view(), name="key-rotate"),
    path("keys/<uuid:pk>/claim", views.KeyClaimView.as_view(), name="key-claim"),
]
