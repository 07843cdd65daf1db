"""AsyncWarden: the same contract as Warden, awaited (asyncio.run, no plugin needed)."""

import asyncio

import pytest
from warden_sdk import Allowed, Denied, NotAllowed, RateLimited


def test_async_ask_whoami_and_tools(make_async, fake):
    fake.tools = {"crm.lookup": "allow"}

    async def main():
        async with make_async() as warden:
            me = await warden.whoami()
            tools = await warden.tools()
            answer = await warden.ask("crm.lookup", {"id": 1})
            return me, tools, answer

    me, tools, answer = asyncio.run(main())
    assert me.workspace == "acme" and [t.name for t in tools] == ["crm.lookup"]
    assert isinstance(answer, Allowed)


def test_async_guard_waits_for_approval_and_runs_once(make_async, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("approve", "ok", 2)
    calls = []

    async def main():
        warden = make_async()

        @warden.guard("email.send", params={"to": "a"})
        async def send():
            calls.append(1)
            return "sent"

        return await send()

    assert asyncio.run(main()) == "sent"
    assert calls == [1]
    (action,) = fake.actions.values()
    assert action["result"] == {"status": "succeeded", "output": "sent"}


def test_async_guard_denied_raises_with_reason(make_async, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("deny", "too risky", 1)

    async def main():
        warden = make_async()

        @warden.guard("email.send", params={})
        async def send():
            raise AssertionError("must not run")

        await send()

    with pytest.raises(Denied) as caught:
        asyncio.run(main())
    assert caught.value.reason == "too risky"


def test_async_context_manager_reports_result(make_async, fake):
    fake.tools = {"crm.lookup": "allow"}

    async def main():
        warden = make_async()
        async with warden.guard("crm.lookup", params={}) as guard:
            guard.result = [1, 2]

    asyncio.run(main())
    (action,) = fake.actions.values()
    assert action["result"] == {"status": "succeeded", "output": [1, 2]}


def test_async_refusal_and_rate_limit(make_async, fake, clock):
    fake.throttle_next = 4

    async def main():
        await make_async().whoami()

    with pytest.raises(RateLimited):
        asyncio.run(main())
    assert clock.sleeps == [2.0, 2.0, 2.0]

    async def refused():
        await make_async().ask("hr.fire", {})

    with pytest.raises(NotAllowed):
        asyncio.run(refused())


def test_async_guard_refuses_sync_functions(make_async):
    with pytest.raises(TypeError):
        make_async().guard("x")(lambda: None)


def test_async_call_tool_waits_for_a_human_then_executes_once(make_async, fake):
    fake.tools = {"email.send": "confirm"}
    fake.scripted = ("approve", "ok", 2)

    async def main():
        async with make_async() as warden:
            return await warden.call_tool("email.send", {"to": "ann@example.com"})

    call = asyncio.run(main())
    assert call.result == {"echo": {"to": "ann@example.com"}}
    assert len(fake.executed) == 1
