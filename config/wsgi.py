import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

from config.startup import (  # noqa: E402 - needs settings loaded
    require_audit_signing_key,
    require_secret_key,
    start_telemetry,
)

require_secret_key()
require_audit_signing_key()
start_telemetry()
