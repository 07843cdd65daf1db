from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"

    def ready(self):
        from audit.signals import checkpoint_signed
        from audit.tasks import on_checkpoint_signed

        checkpoint_signed.connect(on_checkpoint_signed, dispatch_uid="audit.checkpoint_signed")
