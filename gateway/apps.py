from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway (connectors and execution)"

    def ready(self):
        from approvals.erasure import register_eraser, register_sealer
        from approvals.minimisation import register_pruner
        from gateway import governance, secret_stores
        from gateway.minimisation import (
            executions_erase_outputs,
            executions_prune_outputs,
            executions_seal_outputs,
        )

        register_pruner("executions", executions_prune_outputs)
        register_eraser("executions", executions_erase_outputs)
        register_sealer("executions", executions_seal_outputs)
        governance.register()
        secret_stores.register_stores()
