class OneTimeSecret:
    """A secret for the one page that shows it. Renders as itself, but its repr is
    masked: Django's template engine logs the whole context (reprs) at DEBUG when a
    variable lookup fails, which would otherwise write the secret into the logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def __str__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "OneTimeSecret('***')"


def split_words(value: str | None) -> list[str]:
    """Admin text inputs that take a list: separated by spaces or commas."""
    return [part for part in (value or "").replace(",", " ").split() if part]
