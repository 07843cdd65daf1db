"""Gate tests' helpers. The usual cast (make_tool, live_workspace, agent, approver,
ask, approve) is shared from tests/conftest.py."""

import pytest
from django.db import connection

from common.actor import Actor

SYSTEM = Actor.system("tests")


def postgres_only():
    """Skip unless the test database is PostgreSQL (row locks are no-ops on SQLite)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: select_for_update is a no-op on SQLite")
