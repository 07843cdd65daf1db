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


@pytest.fixture
def live_workspace(make_workspace):
    return make_workspace(writes_enabled=True, mode="live")


@pytest.fixture
def agent(live_workspace, make_key, key_client):
    """(key, client) with every action scope and a `*` allowlist."""
    key, plaintext = make_key(
        live_workspace, scopes=["actions:read", "actions:write", "actions:external"]
    )
    return key, key_client(plaintext)
