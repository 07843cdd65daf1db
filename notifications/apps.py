from django.apps import AppConfig
from django.conf import settings


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications and background work"

    def ready(self):
        from approvals.signals import action_decided, confirmation_requested
        from notifications.receivers import on_action_decided, on_confirmation_requested

        confirmation_requested.connect(
            on_confirmation_requested, dispatch_uid="notifications.confirmation_requested"
        )
        action_decided.connect(on_action_decided, dispatch_uid="notifications.action_decided")
        from audit.retention import register_prune_limit
        from notifications.selectors import export_prune_limit

        register_prune_limit(export_prune_limit)
        from notifications import governance

        governance.register()

        if settings.CELERY_TASK_ALWAYS_EAGER and settings.WARDEN_DELIVERY_IN_BACKGROUND:
            # No broker, so no beat: the background lane runs the outbox sweeper.
            from common import background
            from notifications.delivery import outbox_sweep

            background.every(settings.WARDEN_EAGER_SWEEP_SECONDS, outbox_sweep)
