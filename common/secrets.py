"""The server pepper: the secret behind every keyed digest (key secrets, confirmation
tokens, retention checkpoints). Lives in common so the evidence core can use it without
depending on keys."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables


@sensitive_variables("value")
def pepper() -> bytes:
    """Never empty: a digest keyed with nothing would be forgeable."""
    value = settings.WARDEN_KEY_PEPPER or settings.SECRET_KEY  # empty SECRET_KEY raises
    if not value:
        raise ImproperlyConfigured("Set SECRET_KEY (or WARDEN_KEY_PEPPER) when DEBUG is off.")
    return value.encode()
