from django.urls import path

from oversight.api.views import PolicySimulateView, PostureView, ShadowReportView

urlpatterns = [
    path("posture", PostureView.as_view(), name="posture"),
    path("policy/simulate", PolicySimulateView.as_view(), name="policy-simulate"),
    path("policy/shadow-report", ShadowReportView.as_view(), name="policy-shadow-report"),
]
