from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Warden common"

    def ready(self):
        from common.api import schema  # noqa: F401 - registers the session+CSRF scheme
