import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

from config.startup import (  # noqa: E402 - needs settings loaded
    require_audit_signing_key,
    require_secret_key,
    start_telemetry,
)

require_secret_key()
require_audit_signing_key()
start_telemetry()
