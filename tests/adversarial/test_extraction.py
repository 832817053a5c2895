"""Taking the program out of a model's answer, and out of what a program hands `spawn`.

A program that starts with a line the extraction did not expect (`if`, `try`, a decorator, an
augmented assignment) must run whole: a block silently dropped is a different program than the
one the model wrote, and the record would say otherwise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers.cli import swarmlab

from swarmlab.runtime import extract_program
from swarmlab.runtime._scenario import program_from_spawn_argument

IF_FIRST = "if budget()['tokens'] > 0:\n    log('go')\nx = 1"

# Programs handed to spawn as they are: each must come back unchanged.
PROGRAMS = [
    IF_FIRST,
    "try:\n    spawn('x = 1')\nexcept RuntimeError as e:\n    log(str(e))",
    "with_budget = budget()\nlog(with_budget)",
    "while len(kids) < 3:\n    kids.append(1)",
    "for idea in ideas:\n    spawn(idea)",
    "with lock:\n    pass",
    "@decorate\ndef f():\n    return 1",
    '"""Buy paperclips."""\nbuy()',
    "'''single'''\nx = 1",
    "# the plan\nx = 1",
    "total += 1\nlog(total)",
    "a, b = 1, 2",
    "d['key'] = 1",
    "x: int = 3",
    "lab.log('hello world')",
    "print(f'{n} clips')",
    "(a, b) = (1, 2)",
    "[spawn(c) for c in codes]",
    "-1",
    "not done",
    "assert ok, 'not ok'",
    "raise SystemExit",
    "del cache",
    "global n",
    "async def f():\n    return 1",
    "match cmd:\n    case 'a':\n        pass",
    "import json\nlog(json.dumps(1))",
    "from world import buy\nbuy()",
    "x = 1 if ready else 2",
    "lambda_value = (lambda: 1)()",
    'print("don\'t stop")',
    'PROMPT = """Reply with:\n```python\nx = 1\n```\n"""\nrun_ai(PROMPT)',
    "results = wait(kids)\n{'n': len(results)}",
]


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_program_handed_to_spawn_runs_whole(program: str) -> None:
    assert program_from_spawn_argument(program) == program
    assert extract_program(program) == program


# (a model's answer, the program in it)
ANSWERS = [
    ("Here is the code:\n```python\n" + IF_FIRST + "\n```\nHope this helps!", IF_FIRST),
    ("Here's a program:\n" + IF_FIRST, IF_FIRST),
    ("Sure! Try this:\n\n" + IF_FIRST, IF_FIRST),
    ("Certainly\n" + IF_FIRST, IF_FIRST),
    ("Steps:\n1. Check the budget.\n2. Go.\n\n" + IF_FIRST, IF_FIRST),
    ("```py\nx = 1\n```", "x = 1"),
    ("```Python\nx = 1\n```", "x = 1"),
    ("``` python title=plan.py\nx = 1\n```", "x = 1"),
    ("~~~\nx = 1\n~~~", "x = 1"),
    ("Run this:\n```\nspawn('x = 1')\n", "spawn('x = 1')"),
    ("First install:\n```bash\npip install clips\n```\nthen:\n```python\nx = 1\n```", "x = 1"),
    ('```json\n{"a": 1}\n```\n' + IF_FIRST, IF_FIRST),
    ("Use this:\n\npython\ndef go():\n    return 1\n\ngo()", "def go():\n    return 1\n\ngo()"),
    ("Python:\nx = 1", "x = 1"),
    ("Do it like this:\n\n    if ready:\n        go()\n    done()", "if ready:\n    go()\ndone()"),
    ("Here:\r\n```python\r\nx = 1\r\n```\r\n", "x = 1"),
    ("Here’s what I’d run:\n" + IF_FIRST, IF_FIRST),
    ("**Plan**\n- order early\n- split orders\n\n" + IF_FIRST, IF_FIRST),
    ("for example, you could write:\nx = 1", "x = 1"),
    ("# Plan\n\nBuy online.\n\n# the code\nx = 1", "# the code\nx = 1"),
    ("Call `spawn(code)` for each idea:\n" + IF_FIRST, IF_FIRST),
    ("Note the cost ($5 each).\n" + IF_FIRST, IF_FIRST),
]


@pytest.mark.parametrize(("answer", "program"), ANSWERS)
def test_the_program_is_taken_whole_from_an_answer(answer: str, program: str) -> None:
    assert extract_program(answer) == program
    assert program_from_spawn_argument(answer) == program


PROSE = [
    "Buy them online from an office-supply store.",
    "1. Order in bulk.\n2. Ask a neighbour.",
    "Sure!",
    "Here's how: call the supplier tonight",
    "for example, order early",
    "- ask offices\n- ask schools",
    "Certainly\nI would order online.",
    "# Plan\nOrder online.",
    "```bash\npip install clips\n```",
    "",
    "\n\n   \n",
]


@pytest.mark.parametrize("answer", PROSE)
def test_prose_is_not_a_program(answer: str) -> None:
    assert extract_program(answer) is None


def test_prose_handed_to_spawn_runs_as_written() -> None:
    """Nothing to take out: the text runs as it is (and fails in the sandbox, on the record)."""
    assert program_from_spawn_argument("Buy them online.") == "Buy them online."


@pytest.mark.parametrize(
    "hostile",
    [
        "\n" * 64_000,
        "word " * 12_800,
        "```bash\n" * 8_000,
        "a" * 64_000,
        "Here is it:\n" * 5_000 + "x = 1",
        "'" * 64_000,
        "# c\n" * 16_000,
    ],
)
def test_extraction_stays_fast_on_hostile_text(hostile: str) -> None:
    started = time.perf_counter()
    program_from_spawn_argument(hostile)
    assert time.perf_counter() - started < 0.5


@pytest.mark.slow
def test_a_spawned_program_that_starts_with_an_if_block_runs_it(
    tmp_path: Path, redis_url: str
) -> None:
    """The run's record holds the code as spawned, and the `if` block's effect."""
    child = "if True:\n    db_put('seen', 'the if block ran')\nlog('after the block')"
    root = tmp_path / "root.py"
    root.write_text(f"kid = spawn({child!r})\nwait(kid)\n")
    out = tmp_path / "run"
    done = swarmlab(
        "run",
        "paperclips",
        "--program",
        str(root),
        "--out",
        str(out),
        "--redis-url",
        redis_url,
        "--quiet",
        "--set",
        "caps.wall_clock_s=60",
    )
    assert done.returncode == 0, done.stderr
    programs = {
        p["id"]: p for p in map(json.loads, (out / "programs.jsonl").read_text().splitlines())
    }
    assert programs["p0.1"]["code"] == child
    assert programs["p0.1"]["status"] == "completed"
    blackboard = json.loads((out / "blackboard.json").read_text())
    assert blackboard["seen"] == "the if block ran"
