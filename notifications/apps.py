import logging

from django.apps import AppConfig

logger = logging.getLogger("warden.notifications")


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications and background work"

    def ready(self):
        from notifications.receivers import on_confirmation_requested

        try:
            from approvals.signals import confirmation_requested
        except ImportError:  # the gate has not landed yet: the sweeper backfills
            logger.warning("approvals.signals.confirmation_requested not found")
            return
        confirmation_requested.connect(
            on_confirmation_requested, dispatch_uid="notifications.confirmation_requested"
        )
