from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit.signing import require_signing_key
from common.secrets import current_key_pepper


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
