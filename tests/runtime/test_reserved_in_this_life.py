"""A model call reserved in the program's own life is sent once and charged once.

A call asked again after its turn had applied it (the program, waiting on its worker, parked at
the gate meanwhile and was told 'go') found its reservation in the journal, never answered, and
took it for a call a lost runner had sent: it sent it again as a second attempt, charged a second
time. In runs where programs park at the gate often, 6 of 132 calls of one tree were sent and
charged twice, with no runner lost. A reservation is now taken for lost only when it was made
before the program's last restart (a runner's loss).

The class is "a replayed (`dup`) answer read as a lost runner's": the property searches every
pair of restarts at reservation and now, for both the first reservation and a retry's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from helpers.scripted_lab import ScriptedRunner, ScriptedTransitions, capabilities_on
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab import load_spec
from swarmlab.models import Completion, CompletionRequest, ModelBackend, Usage
from swarmlab.records import ProgramRecord
from swarmlab.runtime._model_calls import entry
from swarmlab.runtime._transitions import CompleteArgs, RetryArgs


class CountingModel(ModelBackend):
    name = "counting"

    def __init__(self) -> None:
        self.asked = 0

    async def generate(self, request: CompletionRequest) -> Completion:
        self.asked += 1
        usage = Usage(prompt_tokens=10, completion_tokens=3)
        return Completion(text="ok", usage=usage, finish_reason="stop", model="counting")


class SendingRunner(ScriptedRunner):
    """Sends model calls at once (no gate, no server)."""

    def start_model_call(self, program_id: str, seq: int, call: Any) -> asyncio.Task[str]:
        return asyncio.get_running_loop().create_task(call())

    def keep_answer(self, task: asyncio.Task[str], complete: Any) -> None:
        raise AssertionError("the answer comes at once: nothing to keep")


def _reserved(restarts: int | None, attempt: int) -> str:
    fields: dict[str, Any] = {"attempt": attempt} if attempt > 1 else {}
    if restarts is not None:
        fields["restarts"] = restarts
    return entry("reserved", reserved=300, max_tokens=32, after="", **fields)


def _ask_again(made_at: int | None, now: int, attempt: int) -> tuple[list[str], int, int]:
    """A program at restart `now` asks its model call again, which the journal holds reserved
    at `made_at`: the scripts it ran, the requests the model got, and the attempt it sent."""
    answers = {
        "reserve": [["dup", _reserved(made_at, attempt)]],
        "retry": [["ok"]],
        "settle": [["ok"]],
    }
    scripts = ScriptedTransitions(answers)
    model = CountingModel()
    record = ProgramRecord(id="p0", code="pass")
    caps = capabilities_on(scripts, record, load_spec("paperclips"), backend=model)
    caps.env.runner = SendingRunner()
    caps.state.restarts = now
    assert asyncio.run(caps.call("run_ai", ("an idea",), {})) == "ok"
    retries = [args for args, _ in scripts.asked if isinstance(args, RetryArgs)]
    if retries:
        sent = json.loads(retries[0].entry)
        assert sent.get("restarts", 0) == now  # the new attempt is this life's
    return scripts.scripts_asked(), model.asked, caps.attempts


@settings(max_examples=60, deadline=None)
@given(
    made_at=st.one_of(st.none(), st.integers(0, 3)),
    later=st.integers(0, 2),
    attempt=st.integers(1, 3),
)
def test_a_reservation_is_sent_again_only_after_a_restart(
    made_at: int | None, later: int, attempt: int
) -> None:
    now = (made_at or 0) + later
    asked, requests, sent_attempt = _ask_again(made_at, now, attempt)
    assert requests == 1  # the model is asked once in this life, whatever the journal held
    if later == 0:  # reserved in this life: never sent, so sent now as it is, charged once
        assert asked == ["reserve", "settle"]
        assert sent_attempt == attempt
    else:  # reserved before a runner's loss: perhaps sent, so the next attempt is charged
        assert asked == ["reserve", "retry", "settle"]
        assert sent_attempt == attempt + 1


def test_a_tampered_restarts_count_is_read_as_none() -> None:
    for hostile in ("1", 1.5, [1], {"n": 1}, True, None):
        text = entry("reserved", reserved=300, max_tokens=32, after="", restarts=hostile)
        answers = {"reserve": [["dup", text]], "retry": [["ok"]], "settle": [["ok"]]}
        scripts = ScriptedTransitions(answers)
        model = CountingModel()
        record = ProgramRecord(id="p0", code="pass")
        caps = capabilities_on(scripts, record, load_spec("paperclips"), backend=model)
        caps.env.runner = SendingRunner()
        caps.state.restarts = 1
        assert asyncio.run(caps.call("run_ai", ("an idea",), {})) == "ok"
        assert scripts.scripts_asked() == ["reserve", "retry", "settle"], hostile
        assert not isinstance(scripts.asked[-1][0], CompleteArgs)
