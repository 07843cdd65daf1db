from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self):
        from approvals import appliers
        from approvals.policy import services as policy_services
        from approvals.policy import versions
        from tenants import services as tenant_services

        appliers.register()
        policy_services.register()
        if versions.settings_changed not in tenant_services.SETTINGS_CHANGED_HOOKS:
            tenant_services.SETTINGS_CHANGED_HOOKS.append(versions.settings_changed)
