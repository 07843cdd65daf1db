"""The gunicorn worker class of the production server (docs "Running in production"):
uvicorn's event loop serving config.asgi, with what gunicorn's own workers do kept:
REMOTE_ADDR is the peer (no proxy-header rewriting: common.net.client_ip reads
X-Forwarded-For itself, WARDEN_TRUSTED_PROXIES) and the scheme comes from Django's
SECURE_PROXY_SSL_HEADER.

    gunicorn config.asgi --worker-class config.asgi_worker.Worker ..."""

import warnings

with warnings.catch_warnings():  # "use the uvicorn-worker package": the same class
    warnings.simplefilter("ignore", DeprecationWarning)
    from uvicorn.workers import UvicornWorker


class Worker(UvicornWorker):
    CONFIG_KWARGS = {"loop": "asyncio", "http": "h11", "proxy_headers": False, "lifespan": "on"}
