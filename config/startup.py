from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from approvals.selectors import pending_confirmation_count
from audit.selectors import sealer_lag_seconds
from audit.signing import require_signing_key
from common import telemetry
from common.secrets import current_key_pepper

# The operator's gauges, read at each metric export (README: "Telemetry").
GAUGES = (
    telemetry.Gauge(
        "warden.approvals.pending",
        "Confirmations waiting for a human, all workspaces.",
        "{confirmation}",
        pending_confirmation_count,
    ),
    telemetry.Gauge(
        "warden.audit.sealer_lag",
        "Age of the oldest audit entry queued for the chain (0: none queued).",
        "s",
        sealer_lag_seconds,
    ),
)


def require_secret_key() -> None:
    """Serving processes refuse to start without SECRET_KEY (DEBUG off has no default) or
    with a key pepper id that names no pepper."""
    try:
        configured = bool(settings.SECRET_KEY)
    except ImproperlyConfigured:  # Django refuses to hand out an empty key
        configured = False
    if not configured:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off.")
    current_key_pepper()  # refused at start rather than at the first key issued


def require_audit_signing_key() -> None:
    """Serving processes refuse to start without the audit signing key (DEBUG off):
    evidence signed with nothing, or with a key in the database, proves nothing."""
    require_signing_key()


def start_telemetry() -> bool:
    """OpenTelemetry for this serving process, when the `OTEL_*` variables switch it on
    (common.telemetry); called once by wsgi, asgi and each Celery worker process."""
    return telemetry.setup(gauges=GAUGES)
