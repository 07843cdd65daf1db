from django.urls import path

from approvals.api import erasure, policy, views

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
    path("policy", policy.PolicyView.as_view(), name="policy"),
    path("policy/schema", policy.PolicySchemaView.as_view(), name="policy-schema"),
    path("policy/plan", policy.PolicyPlanView.as_view(), name="policy-plan"),
    path("policy/apply", policy.PolicyApplyView.as_view(), name="policy-apply"),
    path("policy/test", policy.PolicyTestView.as_view(), name="policy-test"),
    path("policy/versions", policy.PolicyVersionListView.as_view(), name="policy-versions"),
    path(
        "policy/versions/<int:number>",
        policy.PolicyVersionDetailView.as_view(),
        name="policy-version",
    ),
    path(
        "policy/versions/<int:number>/rollback",
        policy.PolicyRollbackView.as_view(),
        name="policy-version-rollback",
    ),
    path("approvals/<uuid:pk>/deny", views.ApprovalDenyView.as_view(), name="approval-deny"),
    path(
        "personal-data/erase",
        erasure.PersonalDataEraseView.as_view(),
        name="personal-data-erase",
    ),
]
