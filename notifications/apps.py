from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications and background work"

    def ready(self):
        from approvals.signals import confirmation_requested
        from notifications.receivers import on_confirmation_requested

        confirmation_requested.connect(
            on_confirmation_requested, dispatch_uid="notifications.confirmation_requested"
        )
        from audit.retention import register_prune_limit
        from notifications.selectors import export_prune_limit

        register_prune_limit(export_prune_limit)
        from notifications import governance

        governance.register()
