import shutil
import subprocess
import time

import pytest
import redis

from tests.reliability.server import WardenServer, free_port, migrate


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """One migrated SQLite file per session; each server starts from a copy."""
    database = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate(database)
    return database


@pytest.fixture
def start_server(migrated_sqlite, tmp_path):
    servers = []

    def start(*seed_args: str, **env: str) -> WardenServer:
        server = WardenServer(migrated_sqlite, tmp_path, **env)
        servers.append(server)
        return server.start(*seed_args)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of our own on a free port, which the test may stop and restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    processes = []

    def start():
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
        )
        processes.append(process)
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        for _ in range(50):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop():
        processes[-1].terminate()
        processes[-1].wait(timeout=10)

    start()
    yield port, start, stop
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
