from django.apps import AppConfig


class OversightConfig(AppConfig):
    """The oversight layer: work that watches the evidence core and the gate from above
    (anomaly detection, scheduled export and checkpoint delivery, the retention schedule,
    privacy summaries, replay, posture). Nothing below imports it."""

    name = "oversight"
    verbose_name = "Oversight"

    def ready(self):
        from audit.retention import register_prune_limit
        from audit.signals import checkpoint_signed
        from oversight import governance
        from oversight.selectors import export_prune_limit
        from oversight.tasks import on_checkpoint_signed

        register_prune_limit(export_prune_limit)
        governance.register()

        checkpoint_signed.connect(on_checkpoint_signed, dispatch_uid="audit.checkpoint_signed")
