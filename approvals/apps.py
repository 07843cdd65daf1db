from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self):
        from approvals import appliers
        from approvals.policy import services as policy_services

        appliers.register()
        policy_services.register()
