"""What the leak scans share: logs captured at DEBUG (SQL included) and the parts of a
key that may never appear in them."""

import logging

import pytest
from django.db import connection


@pytest.fixture
def debug_everything(caplog):
    """Every logger at DEBUG, SQL included, captured by caplog."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = False


def secret_parts(plaintext: str) -> list[str]:
    """The full key and its secret part: neither may leak."""
    return [plaintext, plaintext.split("_", 2)[2]]
