from django.apps import AppConfig


class OversightConfig(AppConfig):
    """The oversight layer above approvals (posture). Nothing below imports it."""

    name = "oversight"
    verbose_name = "Oversight"
