"""The record tells what happened, whatever a program does to it (issue 10, defects 3, 4, 6).

- Tokens: a prompt of emoji costs a real server many tokens a character; the lab reserved by
  characters and settled to `min(real, reserved)`, so summary.json said 18.6k where the server
  counted 144k. Here `used` is the server's own sum, the overrun shows, and the cap then denies.
- Kinds: `run_ai(..., _alias="world.buy")` was recorded as a world purchase; a call to an
  undefined name (`start()`, `end()`, `escape_attempt()`) was recorded under that name, and the
  report counted it as a lifecycle step or an escape. A program that raises the words of a
  limit error (`MemoryError('memory limit exceeded: ...')`) was counted as a denial of it.
- Wall clock: summary.json said `min(used, limit)`, hiding the overrun.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.fake_endpoint import FakeEndpoint, completion_body
from helpers.hostile_runs import assert_promises_kept, run_hostile

from swarmlab.cluster import RayCluster
from swarmlab.core import EVENT_KINDS, UNKNOWN_NAME_KIND

pytestmark = pytest.mark.slow

SERVER_PROMPT_TOKENS = 40_000
"""What the server says each emoji prompt cost (its tokenizer, not the lab's estimate)."""

EMOJI = """
PROMPT = "\\U0001F600\\U0001F4CE" * 1_000
answered = 0
for i in range(5):
    try:
        run_ai(PROMPT, max_tokens=16)
        answered = answered + 1
    except Exception as e:
        print("refused:", e)
answered
"""


def test_tokens_used_are_what_the_server_counted_overrun_shown_and_then_denied(
    tmp_path: Path,
    redis_url: str,
    ray_cluster: RayCluster,
    fake_endpoint: Callable[..., FakeEndpoint],
) -> None:
    body = completion_body("fine")
    body["usage"] = {
        "prompt_tokens": SERVER_PROMPT_TOKENS,
        "completion_tokens": 16,
        "total_tokens": SERVER_PROMPT_TOKENS + 16,
    }
    server = fake_endpoint(default=(200, {}, body))
    overrides = [f"model=openai:{server.url}", "caps.tokens=50000", "caps.wall_clock_s=60"]
    run = run_hostile(tmp_path, redis_url, EMOJI, overrides)
    metrics = assert_promises_kept(run)
    summary = run.summary()
    assert summary["status"] == "completed"
    served = len(server.chat_posts())
    assert served == 2  # under the cap before each; the second call overran it
    assert run.root()["result"] == served
    assert run.root()["output"].count("refused: CapExceeded(tokens)") == 3, run.root()["output"]
    tokens = summary["caps"]["tokens"]
    counted = served * (SERVER_PROMPT_TOKENS + 16)
    assert tokens["used"] == counted  # the server's count, not the reservation
    assert tokens["used"] > tokens["limit"]  # the overrun, shown
    assert tokens["denied"] == 3
    assert summary["caps"]["model_calls"]["used"] == served
    assert metrics["model_tokens"] == counted


FORGER = """
tries = {}
def attempt(name, call):
    try:
        call()
        tries[name] = "answered"
    except Exception as e:
        tries[name] = type(e).__name__
attempt("alias", lambda: run_ai("x", _alias="world.buy"))
attempt("called_as", lambda: run_ai("x", called_as="world.buy"))
attempt("kind", lambda: log("x", kind="escape_attempt"))
attempt("start", lambda: start())
attempt("end", lambda: end())
attempt("escape", lambda: escape_attempt())
attempt("tripwire", lambda: tripwire(rule="escape"))
attempt("restart", lambda: restart())
attempt("world.start", lambda: world.start())
kids = [
    spawn("raise TimeoutError('feed time limit exceeded: 2.5s > 2s')", task="fake cpu"),
    spawn("raise MemoryError('memory limit exceeded: 99999999 bytes > 67108864 bytes')",
          task="fake memory"),
    spawn("raise RuntimeError('suspension limit 400 exceeded')", task="fake calls"),
    spawn("x = 'a' * 10 ** 9", task="real memory"),
]
wait(kids)
tries
"""

FORGED_NAMES = {"start", "end", "escape_attempt", "tripwire", "restart"}


def test_a_program_cannot_choose_the_kind_of_an_event_or_forge_a_denial(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    run = run_hostile(tmp_path, redis_url, FORGER, ["caps.wall_clock_s=60"])
    metrics = assert_promises_kept(run)
    root = run.root()
    assert root["status"] == "completed", root["error"]
    tries: dict[str, Any] = root["result"]
    assert {tries[k] for k in ("alias", "called_as", "kind")} == {"ValueError"}
    assert {tries[k] for k in ("start", "end", "escape", "tripwire", "restart")} == {"NameError"}
    assert tries["world.start"] == "AttributeError"  # the world module has no such name
    events = run.events()
    kinds = Counter(e["kind"] for e in events)
    assert set(kinds) <= EVENT_KINDS
    unknown = {e["detail"]["name"] for e in events if e["kind"] == UNKNOWN_NAME_KIND}
    assert unknown == FORGED_NAMES
    assert "world.buy" not in kinds
    assert "escape_attempt" not in kinds
    assert "tripwire" not in kinds
    programs = len(run.programs())
    assert kinds["start"] == kinds["end"] == programs  # one each, the lab's own
    assert metrics["escape_attempts"] == 0
    assert metrics["programs"] == programs
    limits = run.summary()["program_limits"]
    assert limits["memory_bytes"]["denied"] == 1  # the real one only
    assert limits["cpu_s"]["denied"] == 0
    assert limits["host_calls"]["denied"] == 0
    ends = {e["program"]: e["detail"] for e in events if e["kind"] == "end"}
    children = run.by_task()
    assert "limit" not in ends[children["fake memory"]["id"]]
    assert ends[children["real memory"]["id"]]["limit"] == "memory_bytes"


BUSY = """
kids = [spawn("while True:\\n    now()", task="busy") for i in range(4)]
wait(kids)
"""


def test_summary_shows_the_wall_clock_overrun(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    overrides = ["caps.wall_clock_s=6", "program_limits.host_calls=100000000"]
    run = run_hostile(tmp_path, redis_url, BUSY, [*overrides, "program_limits.cpu_s=600"])
    assert_promises_kept(run)
    summary = run.summary()
    assert summary["status"] == "halted"
    wall = summary["caps"]["wall_clock_s"]
    assert wall["limit"] == 6
    assert abs(wall["used"] - (summary["duration_s"] - (summary["startup_s"] or 0.0))) <= 0.002
    assert wall["used"] > wall["limit"]  # the run stops after its wall clock ran out: shown
    # None ran to its end: each was stopped by the kill the wall clock set, or (when its next
    # call came before the kill reached it) denied by the wall clock itself.
    assert set(summary["programs"]["by_status"]) <= {"killed", "crashed"}
    for program in run.programs():
        if program["status"] == "crashed":
            assert "CapExceeded(wall_clock_s)" in program["error"], program["error"]


# Each child computes or calls in short slices, parking in a timed wait between them: no slice
# reaches a per-program limit, the program as a whole does. The limits (and the output printed
# before each park) once started afresh at every slice.
SLICED = {
    "computes": "x = 0\nfor j in range(500_000):\n    x = x + j",
    "calls": "for j in range(10):\n    my_id()",
}
SLICES = """
kid = spawn("import time\\ntime.sleep(10 ** 6)", task="sleeper")
for i in range(400):
    print("step", i)
{body}
    wait(kid, timeout=1)
"all steps"
"""


def test_per_program_limits_and_output_hold_across_parked_slices(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    root = "kids = []\n"
    for task, body in SLICED.items():
        code = SLICES.format(body="\n".join("    " + line for line in body.splitlines()))
        root += f"kids.append(spawn({code!r}, task={task!r}))\n"
    root += "wait(kids)\n"
    overrides = ["program_limits.cpu_s=1", "program_limits.host_calls=60"]
    run = run_hostile(tmp_path, redis_url, root, [*overrides, "caps.wall_clock_s=60"])
    assert_promises_kept(run)
    children = run.by_task()
    computes, calls = children["computes"], children["calls"]
    assert computes["status"] == calls["status"] == "crashed"
    steps = computes["output"].count("step ")
    assert "time limit exceeded" in computes["error"] or "timeout" in computes["error"], steps
    assert "suspension limit" in calls["error"]
    for record in (computes, calls):
        assert "step 0\nstep 1\nstep 2\n" in record["output"]  # printed before earlier parks
        assert "step 399" not in record["output"]
    limits = run.summary()["program_limits"]
    assert limits["cpu_s"]["denied"] == 1
    assert limits["host_calls"]["denied"] == 1


SHRINK = """
answers = []
for i in range(2):
    try:
        answers.append(run_ai("hi", max_tokens=500))
    except Exception as e:
        answers.append(str(e))
answers
"""


def test_a_call_shrunk_to_the_tokens_left_is_not_counted_as_denied(
    tmp_path: Path,
    redis_url: str,
    ray_cluster: RayCluster,
    fake_endpoint: Callable[..., FakeEndpoint],
) -> None:
    from swarmlab import load_spec
    from swarmlab.models import CompletionRequest, Message, create_backend

    backend = create_backend("openai:http://127.0.0.1:9/v1", model_name="fake-model")
    system = load_spec("paperclips").system_prompt
    request = CompletionRequest(
        messages=(Message(role="system", content=system), Message(role="user", content="hi")),
        max_tokens=500,
    )
    estimate = backend.estimate_prompt_tokens(request)
    body = completion_body("fine")  # the server counts 40 tokens fewer than the cap allows
    body["usage"] = {"prompt_tokens": estimate + 5, "completion_tokens": 5, "total_tokens": 0}
    body["usage"]["total_tokens"] = estimate + 10
    server = fake_endpoint(default=(200, {}, body))
    overrides = [
        f"model=openai:{server.url}",
        "model_name=fake-model",
        f"caps.tokens={estimate + 50}",
        "caps.wall_clock_s=60",
    ]
    run = run_hostile(tmp_path, redis_url, SHRINK, overrides)
    assert_promises_kept(run)
    # The first call fits 50 tokens, not 500: it is made, shrunk. The second finds 40 left,
    # less than its prompt needs: denied.
    first, second = run.root()["result"]
    assert first == "fine"
    assert second.startswith("CapExceeded(tokens)"), second
    posts = server.chat_posts()
    assert len(posts) == 1
    assert posts[0]["body"]["max_tokens"] == 50
    tokens = run.summary()["caps"]["tokens"]
    assert tokens["used"] == estimate + 10
    assert tokens["denied"] == 1  # the real denial only, not the shrink
