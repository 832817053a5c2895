"""A program stopped after sending its model call, before it settles or parks, has its answer
kept.

A model call that takes longer than `PARK_AFTER_S` parks its program, and the answer is kept in
Redis when it comes (`complete.lua`): a program killed while parked is settled to what the
server used. A program stopped (a kill(), the run's stop) in the moment before it parks, or
while its settlement waited for its turn, left its answer to nobody: the call stayed charged
at its whole reservation, and completions.jsonl lacked it. Its answer is now kept as a parked
program's is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from helpers.scripted_lab import ScriptedRunner, ScriptedTransitions, capabilities_on

from swarmlab import load_spec
from swarmlab.models import Completion, CompletionRequest, ModelBackend
from swarmlab.records import ProgramRecord
from swarmlab.runtime import _model_calls
from swarmlab.runtime._transitions import CompleteArgs

SLOW_S = 0.3
PARK_AFTER_S = 2.0
"""The test's wait before a slow call parks: long enough that a loaded machine never parks it
before the test has seen the call sent (the lab's own is 0.02 s)."""


class _Model(ModelBackend):
    name = "answers"

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s

    async def generate(self, request: CompletionRequest) -> Completion:
        await asyncio.sleep(self.after_s)
        usage = {"prompt_tokens": 11, "completion_tokens": 3}
        return Completion(text="ok", usage=usage, finish_reason="stop", model="slow")  # type: ignore[arg-type]


class _KeepingRunner(ScriptedRunner):
    """A runner that starts model calls and keeps the answers it is asked to keep."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[CompleteArgs] = []
        self.done = asyncio.Event()

    def start_model_call(
        self, program_id: str, seq: int, call: Callable[[], Awaitable[str]]
    ) -> asyncio.Task[str]:
        return asyncio.get_running_loop().create_task(call())  # type: ignore[arg-type]

    def keep_answer(self, task: asyncio.Task[str], complete: Callable[[str], CompleteArgs]) -> None:
        def done(finished: asyncio.Task[str]) -> None:
            self.kept.append(complete(finished.result()))
            self.done.set()

        task.add_done_callback(done)


async def _stopped(answer_after_s: float, settle: list[list[str]]) -> tuple[_KeepingRunner, bool]:
    scripts = ScriptedTransitions({"reserve": [["ok"]], "settle": settle})
    record = ProgramRecord(id="p0.1", parent_id="p0", depth=1, code="pass")
    caps = capabilities_on(scripts, record, load_spec("paperclips"), _Model(answer_after_s))
    runner = _KeepingRunner()
    caps.env.runner = runner
    call = asyncio.create_task(caps.call("run_ai", ("How many paperclips?",), {}))
    await asyncio.sleep(0.05)  # sent; not parked, or waiting for the turn to settle
    expected = ["reserve"] + ["settle"] * len(settle)
    for _ in range(10_000):  # the turns to the settlement, if the machine stalled before them
        if scripts.scripts_asked() == expected:
            break
        await asyncio.sleep(0.001)
    assert scripts.scripts_asked() == expected
    call.cancel()  # the runner stops the slice: a kill(), or the run's stop
    await asyncio.gather(call, return_exceptions=True)
    await asyncio.wait_for(runner.done.wait(), SLOW_S * 10)
    return runner, call.cancelled()


@pytest.mark.parametrize(
    ("answer_after_s", "settle"),
    [(SLOW_S, []), (0.0, [["wait"]])],
    ids=["before it parks", "while its settlement waits for its turn"],
)
def test_an_answer_the_stop_left_behind_is_kept_and_settled(
    answer_after_s: float, settle: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_model_calls, "PARK_AFTER_S", PARK_AFTER_S)
    runner, cancelled = asyncio.run(_stopped(answer_after_s, settle))
    assert cancelled
    [kept] = runner.kept
    assert (kept.id, kept.seq) == ("p0.1", 1)
    settled = json.loads(kept.settled)
    assert settled["settled"] is True
    assert settled["answer"]["usage"] == {"prompt_tokens": 11, "completion_tokens": 3}
    assert kept.delta == 14 - settled["reserved"] < 0  # the reservation given back to use
    assert json.loads(kept.completion)["completion"]["text"] == "ok"
