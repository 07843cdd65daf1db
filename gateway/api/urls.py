from django.urls import path

from gateway.api import views

urlpatterns = [
    path("connectors", views.ConnectorListView.as_view(), name="connector-list"),
    path("connectors/<uuid:pk>", views.ConnectorDetailView.as_view(), name="connector-detail"),
    path("connectors/<uuid:pk>/sync", views.ConnectorSyncView.as_view(), name="connector-sync"),
]
