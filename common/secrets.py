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


@sensitive_variables("value")
def key_pepper(pepper_id: int) -> bytes | None:
    """The machine-key pepper with this id (0: `pepper()`); None when it is not (or no
    longer) configured, so keys digested with a retired pepper stop working."""
    if pepper_id == 0:
        return pepper()
    value = settings.WARDEN_KEY_PEPPERS.get(str(pepper_id), "")
    return value.encode() if value else None


def current_key_pepper() -> tuple[int, bytes]:
    """(id, pepper) new key secrets are digested with; a current id that names no
    pepper is a configuration error (the server refuses to start with it)."""
    pepper_id = settings.WARDEN_KEY_PEPPER_ID
    value = key_pepper(pepper_id)
    if value is None:
        raise ImproperlyConfigured(
            f"WARDEN_KEY_PEPPER_ID={pepper_id} names no WARDEN_KEY_PEPPERS entry."
        )
    return pepper_id, value
