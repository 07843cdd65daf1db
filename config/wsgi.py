import os

import django
from django.core.wsgi import get_wsgi_application

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
application = get_wsgi_application()

from audit.services import sealer_start  # noqa: E402 - needs the apps loaded

# Seals what a killed process left queued (docs "Contention and faults").
sealer_start()
