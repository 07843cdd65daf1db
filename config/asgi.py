"""The production web entry point (docs "Running in production"): gunicorn with
`config.asgi_worker.Worker` (uvicorn's event loop) serving `application`.

Every request runs Django's WSGI handler on a pool of WARDEN_SERVER_THREADS threads,
exactly as a gthread worker would; the one difference is a long-poll
(`GET /api/v1/actions/{id}?wait=N`): its view parks the wait (approvals.waiting) and
the thread returns at once, the wait is awaited on the event loop (no thread held),
then the request runs again, marked resumed, for its answer. So 200 waiters hold no
thread, and the threads serve everything else."""

import asyncio
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import django
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402 - needs settings loaded

from approvals.waiting import PARK, RESUMED, Parked, WaitHub  # noqa: E402
from audit.services import sealer_start  # noqa: E402
from config.startup import (  # noqa: E402
    require_audit_signing_key,
    require_secret_key,
    start_telemetry,
)

require_secret_key()
require_audit_signing_key()
# Before the handler is built: it loads the middleware list once, and the Django
# instrumentation adds its middleware to that list.
start_telemetry()


class _LazyBody(io.RawIOBase):
    """The rest of a request body, read from the event loop only as Django asks for it
    (as gunicorn's workers read it): an oversized body is refused before it is read
    (common.middleware: 413 payload_too_large), never buffered whole."""

    def __init__(self, first: bytes, receive, loop) -> None:
        self.buffer = bytearray(first)
        self.receive, self.loop, self.done = receive, loop, False

    def readable(self) -> bool:
        return True

    def _more(self) -> bool:
        if self.done:
            return False
        message = asyncio.run_coroutine_threadsafe(self.receive(), self.loop).result()
        if message["type"] != "http.request":
            self.done = True
            return False
        self.buffer += message.get("body", b"")
        self.done = not message.get("more_body")
        return True

    def read(self, size: int = -1) -> bytes:
        while (size is None or size < 0 or len(self.buffer) < size) and self._more():
            pass
        size = len(self.buffer) if size is None or size < 0 else size
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def readline(self, size: int = -1) -> bytes:
        while b"\n" not in self.buffer and (size < 0 or len(self.buffer) < size):
            if not self._more():
                break
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        return self.read(min(end, size) if size >= 0 else end)


def _environ(scope: dict, body) -> dict:
    """The WSGI environ of an ASGI HTTP scope (PEP 3333), as gunicorn builds it."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or 80),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[name] = value
            continue
        name = "HTTP_" + name
        if name in environ:
            value = environ[name] + ("; " if name == "HTTP_COOKIE" else ",") + value
        environ[name] = value
    return environ


class WardenASGI:
    """Django's WSGI handler on a thread pool, with parked waits awaited on the loop."""

    def __init__(self, wsgi, threads: int) -> None:
        self.wsgi = wsgi
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="warden-web")
        self.polls = ThreadPoolExecutor(1, thread_name_prefix="warden-waits")
        self.hub = WaitHub(self._poll_sync)

    async def _poll_sync(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.polls, fn, *args)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # no websockets
            await send({"type": "websocket.close"})
            return
        first = await receive()  # a small body (the usual case) is all here
        if first["type"] != "http.request":
            return
        if first.get("more_body"):
            loop = asyncio.get_running_loop()
            body = _LazyBody(first.get("body", b""), receive, loop)
        else:
            body = io.BytesIO(first.get("body", b""))
        await self._serve(scope, body, receive, send)

    async def _serve(self, scope, body, receive, send) -> None:
        loop = asyncio.get_running_loop()
        parked: list[Parked] = []
        environ = _environ(scope, body)
        environ[PARK] = parked.append
        answer = await loop.run_in_executor(self.pool, self._run, environ, parked, loop, send)
        if parked:  # a GET long-poll: run again, without a body, for the answer
            if not await self._wait(parked[0], receive):
                return  # the client left: nothing to answer
            environ = _environ(scope, io.BytesIO())
            environ[RESUMED] = True
            answer = await loop.run_in_executor(self.pool, self._run, environ, [], loop, send)
        if answer is not None:
            status, headers, content = answer
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})

    async def _wait(self, parked: Parked, receive) -> bool:
        """Await the parked wait; False if the client disconnected meanwhile. The key's
        wait slot is released either way."""

        async def disconnected():
            while (await receive())["type"] != "http.disconnect":
                pass

        waiting = asyncio.ensure_future(self.hub.wait(parked))
        leaving = asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait({waiting, leaving}, return_when=asyncio.FIRST_COMPLETED)
            return waiting.done()
        finally:
            waiting.cancel()
            leaving.cancel()
            await asyncio.get_running_loop().run_in_executor(self.polls, parked.release)

    def _run(self, environ, parked, loop, send):
        """In a pool thread: the WSGI call. Returns (status, headers, body) to send, or
        None if the request was parked (nothing sent) or streamed (sent from here)."""
        started = {}

        def start_response(status, headers, exc_info=None):
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [
                (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
            ]

        result = self.wsgi(environ, start_response)
        try:
            if parked:  # the pending answer is not sent: the loop awaits the wait
                return None
            if not getattr(result, "streaming", False):
                return started["status"], started["headers"], b"".join(result)

            def call(message):
                asyncio.run_coroutine_threadsafe(send(message), loop).result()

            call({"type": "http.response.start", "status": started["status"],
                  "headers": started["headers"]})  # fmt: skip
            for chunk in result:
                if chunk:
                    call({"type": "http.response.body", "body": chunk, "more_body": True})
            call({"type": "http.response.body", "body": b""})
            return None
        finally:
            if hasattr(result, "close"):
                result.close()  # request_finished: Django returns its connections

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.polls.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


application = WardenASGI(get_wsgi_application(), settings.WARDEN_SERVER_THREADS)

# Seals what a killed process left queued (docs "Contention and faults").
sealer_start()
