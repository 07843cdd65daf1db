from django.urls import path

from tenants.api import views

urlpatterns = [
    path("whoami", views.WhoAmIView.as_view(), name="whoami"),
    path("workspace", views.WorkspaceView.as_view(), name="workspace"),
    path("members", views.MemberListView.as_view(), name="member-list"),
    path("members/<uuid:pk>", views.MemberDetailView.as_view(), name="member-detail"),
    path("invitations", views.InvitationListView.as_view(), name="invitation-list"),
    path(
        "invitations/<uuid:pk>/accept",
        views.InvitationAnswerView.as_view(),
        name="invitation-accept",
    ),
    path(
        "invitations/<uuid:pk>/decline",
        views.InvitationDeclineView.as_view(),
        name="invitation-decline",
    ),
]
