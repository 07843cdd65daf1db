"""Running the tests' local HTTP servers (upstreams, webhook receivers)."""

import threading
from socketserver import BaseServer

# shutdown() returns only once serve_forever notices it, and serve_forever looks every
# poll_interval (0.5 s by default): each test that stopped a server paid that in teardown.
POLL_INTERVAL = 0.01


def serve_in_background(server: BaseServer) -> None:
    """Serve on a daemon thread; server.shutdown() then stops it within POLL_INTERVAL."""
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
    ).start()
