from django.urls import path

from oversight.api.privacy_views import PrivacySummaryView
from oversight.api.views import PolicySimulateView, PostureView, ShadowReportView

urlpatterns = [
    path("privacy-summary", PrivacySummaryView.as_view(), name="privacy-summary"),
    path("posture", PostureView.as_view(), name="posture"),
    path("policy/simulate", PolicySimulateView.as_view(), name="policy-simulate"),
    path("policy/shadow-report", ShadowReportView.as_view(), name="policy-shadow-report"),
]
