"""A model call sent again after its runner was lost is charged once per attempt: however many
runners race to resume the same call, and however often it is lost, `model_calls` counts the
attempts sent and `tokens` holds each attempt's reservation; an answered call is never sent
again."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab import Caps
from swarmlab.runtime import Coordinator
from swarmlab.runtime._model_calls import entry
from swarmlab.runtime._scheduler import Scheduler

RESERVED = 40


def reserved(attempt: int) -> str:
    return entry("reserved", reserved=RESERVED, max_tokens=30, after="", attempt=attempt)


class Client(Coordinator):
    """A runner's view of the run."""

    def __init__(self, url: str, run_id: str) -> None:
        super().__init__(url, run_id)
        self.sched = Scheduler(self)


async def _retry(client: Client, attempt: int) -> str:
    made = reserved(attempt + 1)
    args = ("p0", 1, "", "", attempt, made, "model_calls", 1, "tokens", RESERVED)
    return str((await client.sched.raw("retry", *args)).kind)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(racers=st.integers(1, 6), losses=st.integers(0, 4), answered=st.booleans())
def test_each_attempt_of_a_lost_call_is_charged_once(
    redis_url: str, racers: int, losses: int, answered: bool
) -> None:
    async def go() -> None:
        run_id = "t-" + secrets.token_hex(4)
        main, clients = Client(redis_url, run_id), [Client(redis_url, run_id) for _ in range(4)]
        caps = Caps(programs=10, model_calls=100, tokens=10_000)
        await main.init_run(caps, {"status": "running"}, ordered=False)
        first = await main.sched.raw(
            "reserve", "p0", 1, "", "", "", reserved(1), 0, "model_calls", 1, "tokens", RESERVED
        )
        assert first.kind == "ok"
        for attempt in range(1, losses + 1):  # each loss: every runner tries to resume the call
            kinds = await asyncio.gather(
                *(_retry(clients[i % len(clients)], attempt) for i in range(racers))
            )
            assert sorted(kinds) == ["dup"] * (racers - 1) + ["ok"]
        if answered:
            done = entry("answered", reserved=RESERVED, after="", attempt=losses + 1, answer={})
            assert (await main.sched.raw("complete", "p0", 1, done)).kind == "ok"
            assert await _retry(clients[0], losses + 1) == "dup"  # never sent again
        usage = await main.usage()
        assert usage["model_calls"]["used"] == 1 + losses
        assert usage["tokens"]["used"] == RESERVED * (1 + losses)
        journaled = json.loads(await main.client.hget(main._key("journal:") + "p0", "1"))
        assert journaled["attempt"] == 1 + losses
        await main.delete_run()
        for client in [main, *clients]:
            await client.close()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("journaled", "parks"),
    [
        (entry("reserved", reserved=RESERVED, after="", attempt=1), True),
        (entry("answered", reserved=RESERVED, after="", answer={"text": "hi"}), False),
        (entry("answered", reserved=RESERVED, after="", error="endpoint gone"), False),
    ],
)
def test_a_call_answered_before_its_program_parks_on_it_resumes_at_once(
    redis_url: str, journaled: str, parks: bool
) -> None:
    """An answer kept while its program was on its way to park (a failure as much as a text)
    means the program does not park: nothing would ever wake it."""

    async def go() -> None:
        client = Client(redis_url, "t-" + secrets.token_hex(4))
        await client.init_run(Caps(programs=10), {"status": "running"}, ordered=False)
        await client.client.hset(client._key("state"), "p0", "run:r.0")
        await client.client.hset(client._key("journal:") + "p0", "1", journaled)
        args = ("p0", "model", "", "c25hcA==", "{}", "", "r.0", 0, 1)
        reply = await client.sched.raw("park", *args)
        assert reply.kind == ("parked" if parks else "go")
        await client.delete_run()
        await client.close()

    asyncio.run(go())
