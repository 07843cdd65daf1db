import pytest

from tests.reliability.server import WardenServer, migrate


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
