import os

import django
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from config.startup import (  # noqa: E402 - needs settings loaded
    require_audit_signing_key,
    require_secret_key,
    start_telemetry,
)

require_secret_key()
require_audit_signing_key()
# Before the handler is built: it loads the middleware list once, and the Django
# instrumentation adds its middleware to that list.
start_telemetry()
application = get_asgi_application()
