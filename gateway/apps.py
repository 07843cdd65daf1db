from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway (connectors and execution)"

    def ready(self):
        from approvals.minimisation import register_pruner
        from gateway import governance, secret_stores
        from gateway.minimisation import executions_prune_outputs

        register_pruner("executions", executions_prune_outputs)
        governance.register()
        secret_stores.register_stores()
