from django.urls import path

from oversight.api.views import PostureView

urlpatterns = [
    path("posture", PostureView.as_view(), name="posture"),
]
