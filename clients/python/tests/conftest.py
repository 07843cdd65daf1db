import pytest
from fake_warden import FakeClock, FakeWarden
from warden_sdk import AsyncWarden, Warden


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock) -> FakeWarden:
    return FakeWarden(clock)


@pytest.fixture
def warden(fake, clock):
    client = Warden(
        "https://warden.test",
        "wdn_test_key",
        transport=fake.transport(),
        sleep=clock.sleep,
        clock=clock.clock,
    )
    yield client
    client.close()


@pytest.fixture
def make_async(fake, clock):
    def make() -> AsyncWarden:
        return AsyncWarden(
            "https://warden.test",
            "wdn_test_key",
            transport=fake.async_transport(),
            sleep=clock.asleep,
            clock=clock.clock,
        )

    return make
