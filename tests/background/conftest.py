"""Background-work tests reuse the notification fixtures (receiver, endpoints, agent)."""

from tests.notifications.conftest import (  # noqa: F401
    SYSTEM,
    agent,
    allow_http,
    allow_local,
    approver,
    ask_pending,
    eager_retries,
    gated_tool,
    live_workspace,
    make_endpoint,
    receiver,
)
