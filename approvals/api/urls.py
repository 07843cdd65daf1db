from django.urls import path

from approvals.api import views

urlpatterns = [
    path("actions", views.ActionListView.as_view(), name="action-list"),
    path("actions/<uuid:pk>", views.ActionDetailView.as_view(), name="action-detail"),
    path("actions/<uuid:pk>/result", views.ActionResultView.as_view(), name="action-result"),
    path("tools", views.ToolListView.as_view(), name="tool-list"),
    path("tools/<uuid:pk>", views.ToolDetailView.as_view(), name="tool-detail"),
    path("approvals", views.ApprovalListView.as_view(), name="approval-list"),
    path(
        "approvals/<uuid:pk>/approve",
        views.ApprovalApproveView.as_view(),
        name="approval-approve",
    ),
    path("approvals/<uuid:pk>/deny", views.ApprovalDenyView.as_view(), name="approval-deny"),
]
