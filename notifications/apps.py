from django.apps import AppConfig
from django.conf import settings


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications and background work"

    def ready(self):
        # Django's place for wiring an app once its models are loaded.
        from approvals.erasure import register_eraser
        from approvals.signals import action_decided, confirmation_requested
        from common import background
        from notifications import governance, tasks  # noqa: F401 - tasks: registers them
        from notifications.delivery import outbox_sweep
        from notifications.erasure import notifications_erase
        from notifications.receivers import on_action_decided, on_confirmation_requested

        confirmation_requested.connect(
            on_confirmation_requested, dispatch_uid="notifications.confirmation_requested"
        )
        action_decided.connect(on_action_decided, dispatch_uid="notifications.action_decided")
        register_eraser("notifications", notifications_erase)
        governance.register()

        if settings.CELERY_TASK_ALWAYS_EAGER and settings.WARDEN_DELIVERY_IN_BACKGROUND:
            # No broker, so no beat: the background lane runs the outbox sweeper.
            background.every(settings.WARDEN_EAGER_SWEEP_SECONDS, outbox_sweep)
