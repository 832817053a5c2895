"""Host work on values a program controls cannot stall a runner (issue 10, defect 1).

The programs here hand the host the worst inputs for the work it does on them: prompts of runs
of blanks for the `sim` policy's prompt classification, spawned code of tens of thousands of
blank lines and of thousands of `open`s for the escape scan, shuffled and padded copies of a
large program for the quine tripwire's similarity. Each of these once cost time quadratic (or
worse) in the value, on the runner's event loop: the runner could not answer `stop_all`, and the
run outlasted its wall clock, exited 1 and wrote no directory. Here the run still stops at its
wall clock, and `swarmlab kill` still stops it within the kill budget.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.hostile_runs import HostileRun, assert_promises_kept, new_run_id, run_hostile
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.cluster import RayCluster
from swarmlab.core import MAX_CODE_CHARS, code_shape, recreation_score
from swarmlab.models import CompletionRequest, Message, create_backend
from swarmlab.runtime import Coordinator
from swarmlab.runtime._adapter import MAX_PROMPT_CHARS
from swarmlab.runtime._capabilities import _KEY, MAX_CODE_BYTES
from swarmlab.runtime._sandbox import _OUTPUT_FULL, MAX_ERROR_CHARS
from swarmlab.runtime._scenario import program_from_spawn_argument
from swarmlab.runtime._slice_limits import _CALLS_TEXT, _CPU_TEXT, _MEMORY_TEXT
from swarmlab.runtime._source_scan import escape_attempts
from swarmlab.runtime._tripwires import asks_for_budget

KILL_STOPS_S = 1.0
"""From `swarmlab kill` to every runner having stopped what it computes."""
KILL_EXITS_S = 5.0
"""From `swarmlab kill` to the run having written its directory and cleaned up."""

# Asks the `sim` policy forever with a prompt that is a run of blanks after "suggestion" (its
# old prompt pattern backtracked over the run: ~12 s a call at 100 KB), and with prompts of
# megabytes (refused by size, cheaply; the program goes on).
ASKER = """
P = "what code implements this suggestion" + " " * 99_900
BIG = "\\u2028 " * 1_000_000
n = 0
while True:
    try:
        run_ai(P, max_tokens=8)
        n = n + 1
    except Exception as e:
        pass
    try:
        run_ai(BIG)
    except ValueError as e:
        pass
"""

# Code for the escape scan (built by the root): tens of thousands of blank lines, a line of
# thousands of `open`s each followed by blanks, imports hidden among blank lines.
SCANNED = """
SCANNED = [
    "\\n" * 60_000 + "x = 1",
    "x = [" + "open   " * 8_000 + "open(1)]",
    ("\\n" * 500 + "import os\\n") * 100 + "x = 1",
    " \\t" * 30_000 + "\\nx = 1",
]
"""

# The root's own code is large (2,000 distinct lines, about 50 KB, never run). It spawns the
# scanned code and two askers, then shuffled, padded copies of those lines, for ever: quine-like
# children whose similarity to the root the tripwire measures at every attempt, also once the
# caps refuse them (the old measure, difflib, took about a minute a pair at this size).
COPIES = 2_000
DRIVER = f"""
import time
for code in SCANNED:
    spawn(code, task="scanned")
spawn(ASKER, task="asker")
spawn(ASKER, task="asker")
n = {COPIES}
LINES = ["    v.a%d = w.b%d(x%d)" % (i, i % 101, i) for i in range(n)]
k = 0
while True:
    k = k + 1
    time.sleep(60)  # a simulated minute, as a model call costs: the others get their turns
    order = [LINES[(i * 7 + k * 13) % n] for i in range(n)]
    pad = "\\n" * ((k % 40) * 200) + "#" * 2_000
    try:
        spawn("if False:\\n" + "\\n".join(order) + pad, task="quine-like")
    except Exception as e:
        pass
"""


def _root() -> str:
    body = "\n".join(f"    v.a{i} = w.b{i % 101}(x{i})" for i in range(COPIES))
    return f"if False:\n{body}\nASKER = {ASKER!r}\n{SCANNED}\n{DRIVER}"


OVERRIDES = [
    "caps.children=60",
    "caps.programs=60",
    "caps.tokens=1000000000000",
    "caps.model_calls=1000000",
    "program_limits.host_calls=100000000",
    "program_limits.cpu_s=600",
    "tripwires=[{name: copies, rule: quine, action: log}]",
]


@pytest.mark.slow
def test_host_work_on_hostile_values_never_outlasts_the_wall_clock(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    run = run_hostile(tmp_path, redis_url, _root(), [*OVERRIDES, "caps.wall_clock_s=20"])
    summary = run.summary()
    assert summary["status"] == "halted", summary["ended_because"]
    assert "wall_clock_s" in summary["ended_because"]
    assert_promises_kept(run)
    programs = run.programs()
    tasks = [p["task"] for p in programs]
    assert tasks.count("quine-like") >= 3, "the root spawned its copies"
    assert tasks.count("scanned") == 4
    assert tasks.count("asker") == 2
    events = run.events()
    trips = [e for e in events if e["kind"] == "tripwire" and e["detail"]["rule"] == "quine"]
    # Every copy was measured in time: under the validated re-creation rule these copies, which
    # carry none of the root's string-borne code, are no re-creation, and no measure timed out.
    assert not [e for e in trips if "too long" in e["detail"]["why"]], trips
    scanned = {p["id"] for p in programs if p["task"] == "scanned"}
    found = [e for e in events if e["kind"] == "escape_attempt" and e["program"] in scanned]
    assert {e["detail"]["source"] for e in found} >= {"open(", "import os"}
    asked = [e for e in events if e["kind"] == "run_ai" and e["decision"] == "allowed"]
    assert len(asked) >= 4, "the askers' prompts were classified, call after call"


@pytest.mark.slow
def test_kill_stops_a_run_whose_programs_keep_the_host_busy(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    run_id = new_run_id()
    holder: dict[str, HostileRun] = {}

    def target() -> None:
        overrides = [*OVERRIDES, "caps.wall_clock_s=120"]
        holder["run"] = run_hostile(tmp_path, redis_url, _root(), overrides, run_id=run_id)

    thread = threading.Thread(target=target)
    thread.start()
    assert _busy(redis_url, run_id), "the run never got going"
    done = subprocess.run(
        [sys.executable, "-m", "swarmlab.cli", "kill", run_id, "--redis-url", redis_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    killed_at = time.time()  # (the kill was set before the command exited: a generous start)
    assert done.returncode == 0, done.stderr
    thread.join(timeout=KILL_EXITS_S + 60)
    exited = time.time() - killed_at
    assert not thread.is_alive()
    assert exited <= KILL_EXITS_S, f"the run ended {exited:.1f} s after the kill"
    run = holder["run"]
    summary = run.summary()
    assert summary["status"] == "killed"
    # The driver ends the run once every runner has answered that it stopped what it computes
    # (it would give a runner that cannot answer 3 s).
    stopped = summary["ended_at"] - killed_at
    assert stopped <= KILL_STOPS_S, f"the runners stopped {stopped:.1f} s after the kill"
    assert_promises_kept(run)


def _busy(redis_url: str, run_id: str, timeout: float = 90) -> bool:
    """Whether the run got its askers asking and its copies spawned within `timeout`."""

    async def going() -> bool:
        coord = Coordinator(redis_url, run_id)
        try:
            if not await coord.exists():
                return False
            usage = await coord.usage()
            return usage["programs"]["used"] >= 9 and usage["model_calls"]["used"] >= 1
        finally:
            await coord.close()

    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if asyncio.run(going()):
            return True
        time.sleep(0.2)
    return False


def test_the_askers_prompt_is_slow_for_the_old_pattern_and_fast_now() -> None:
    """The runs above test what they claim: their prompt is the slow case of the `sim` policy's
    old prompt pattern (quadratic: about 12 s a call at 100 KB), and is fast for the policy."""
    old = re.compile(r"suggestion\s*\??\s*:\s*(.+)", re.IGNORECASE | re.DOTALL)
    prompt = "what code implements this suggestion" + " " * 99_900
    started = time.perf_counter()
    old.search(prompt[:20_036])  # a fifth of it: a twenty-fifth of the time
    assert time.perf_counter() - started > 0.1
    request = CompletionRequest(messages=(Message(role="user", content=prompt),), max_tokens=8)
    started = time.perf_counter()
    asyncio.run(create_backend("sim").generate(request))
    assert time.perf_counter() - started < 0.1


# --- every host-side parser of program or model text, timed at its size limit ---------------
#
# Issue 21, defect 2: the code extraction's "bare language line" pattern backtracked
# quadratically over a run of blanks (12.8 s for 63 KB of `spawn()` text, on the runner's event
# loop, before any cap check). Each parser below sees text a program or a model chose, and is
# timed on inputs as large as the lab lets that text be: known catastrophic shapes (long runs of
# one character, a keyword then a run of blanks, many newlines, nested repetition) and, found by
# search, any short unit repeated up to the limit. Linear work at these sizes takes
# milliseconds; a quadratic pattern takes seconds.

PARSE_BUDGET_S = 1.0
"""One parse of a text at its size limit (generous: the machine may be busy)."""

_sim = create_backend("sim")


def _sim_answer(text: str) -> object:
    request = CompletionRequest(messages=(Message(role="user", content=text),), max_tokens=8)
    return asyncio.run(_sim.generate(request))


def _limit_texts(text: str) -> object:
    """The sandbox's reading of an error text (cut to MAX_ERROR_CHARS before it is read)."""
    found = []
    for prefix in ("TimeoutError: feed time limit exceeded: ", "MemoryError: memory limit ", ""):
        error = (prefix + text)[:MAX_ERROR_CHARS]
        found += [_CPU_TEXT.fullmatch(error), _MEMORY_TEXT.fullmatch(error)]
        found += [_CALLS_TEXT.fullmatch(error), _OUTPUT_FULL.search(error)]
    return found


PARSERS: dict[str, tuple[Callable[[str], object], int]] = {
    "spawn code extraction": (program_from_spawn_argument, MAX_CODE_BYTES),
    "escape scan": (escape_attempts, MAX_CODE_BYTES),
    "quine shape": (code_shape, MAX_CODE_CHARS),
    "quine re-creation": (lambda t: recreation_score(t, t[::-1]), MAX_CODE_CHARS),
    "budget-request tripwire": (asks_for_budget, MAX_PROMPT_CHARS),
    "sim prompt reading": (_sim_answer, MAX_PROMPT_CHARS),
    "sandbox limit errors": (_limit_texts, MAX_ERROR_CHARS),
    "blackboard key": (_KEY.fullmatch, MAX_PROMPT_CHARS),
}

PIECES = [
    " ", "\t", "\n", "\r", "\r\n", "\u2028", "\x85", "\x0c", ":", "#", "`", "```", "~~~",
    "py", "python", "PYTHON3", "\"", "'", "\"\"\"", "\\", "(", ")", "[", "1", ".", "!", "?",
    "a", "_", "x", "open", "import os", "def f():", "if x:", "suggestion", "code", "more",
    "budget", "- ", "1. ", "**", "é", "\U0001f4ce", "ms", "1.5s > ", " bytes > ",
]  # fmt: skip

CATASTROPHIC = [
    " ", "\t", "\n", "\r", ":", "#", "`", "a", "1", "(", "\u2028", " \t", ": ",
    "py" + " " * 4096 + ":", "```" + " " * 4096, "suggestion" + " " * 4096, "more ",
    "\n" + " " * 64, "open ", "'" * 3, "a'b ", "1.", "x = (" * 8, "#\n", "\\\n",
]  # fmt: skip


def _filled(prefix: str, unit: str, tail: str, size: int) -> str:
    """`prefix`, then `unit` repeated, then `tail`: `size` characters in all."""
    room = max(0, size - len(prefix) - len(tail))
    return prefix + (unit * (room // max(1, len(unit)) + 1))[:room] + tail


def _timed(parse: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    parse(text)
    return time.perf_counter() - started


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize("unit", CATASTROPHIC)
def test_each_parser_of_program_text_is_fast_on_known_catastrophic_shapes(
    name: str, unit: str
) -> None:
    parse, limit = PARSERS[name]
    # ' "': the unit inside one unclosed string (the literals carried code is read from)
    for prefix, tail in (("", ""), ("", "x"), ("py", "!"), ("```", "\n```"), (' "', "")):
        seconds = _timed(parse, _filled(prefix, unit, tail, limit))
        assert seconds < PARSE_BUDGET_S, f"{name}: {seconds:.2f} s on {prefix!r}+{unit[:20]!r}*"


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(PARSERS)),
    prefix=st.lists(st.sampled_from(PIECES), max_size=4).map("".join),
    unit=st.lists(st.sampled_from(PIECES), min_size=1, max_size=4).map("".join),
    tail=st.lists(st.sampled_from(PIECES), max_size=3).map("".join),
)
def test_no_parser_of_program_text_is_slow_on_any_repeated_unit(
    name: str, prefix: str, unit: str, tail: str
) -> None:
    parse, limit = PARSERS[name]
    seconds = _timed(parse, _filled(prefix, unit, tail, limit))
    assert seconds < PARSE_BUDGET_S, f"{name}: {seconds:.2f} s on {prefix!r}+{unit!r}*+{tail!r}"


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from("\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e\x00\t "),
            st.characters(codec="utf-8", exclude_characters='\r\n"\\'),
        ),
        max_size=60,
    )
)
def test_spawned_code_is_taken_as_python_reads_it(text: str) -> None:
    """Only `\\r` and `\\n` end a line of Python: a string literal holding U+2028 or U+0085
    is not cut in two (the program would no longer be the one the program spawned)."""
    code = f'x = "{text}"\nlog(x)'
    assert program_from_spawn_argument(code) == code
    assert program_from_spawn_argument(f"```python\n{code}\n```") == code
