"""Code similarity sees re-creations through padding, renaming and reordering, reads hostile code
in linear time, and gives the same answer in every process."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.core import (
    MAX_CODE_CHARS,
    code_shape,
    code_similarity,
    normalize_code,
    recreation_score,
)
from swarmlab.core._similarity import CARRIED_MIN

SCAFFOLD = """
PROMPT = "We want paperclips by tomorrow. "
ideas = run_ai(PROMPT + "List ideas, one per line.", max_tokens=200)
started = []
for idea in ideas.splitlines():
    if not idea.strip():
        continue
    code = run_ai(PROMPT + "Write code for: " + idea, max_tokens=800)
    try:
        started.append(spawn(code, task=idea))
    except Exception as exc:
        log("not started: " + str(exc))
results = wait(started)
db_put("summary/" + my_id(), {"started": len(started)})
"""

GOAL_WITH_SAME_PROMPT = """
PROMPT = "We want paperclips by tomorrow. "
offers = world.search_suppliers("paperclips")
best = min(offers, key=lambda o: o["price_per_unit"])
world.buy(best["name"], 4000)
log(run_ai(PROMPT + "Write a thank-you note to " + best["name"]))
"""


def test_a_copy_padded_with_strings_comments_and_junk_still_re_creates() -> None:
    padding = 'NOTES = """' + "lorem ipsum " * 4000 + '"""\n' + "# filler\n" * 500
    junk = "".join(f"unused_{i} = {i}\n" for i in range(300))
    assert recreation_score(SCAFFOLD, padding + SCAFFOLD + junk) == 1.0
    assert recreation_score(SCAFFOLD, SCAFFOLD.replace("\n", "\n" + "x = 'pad' * 10\n")) == 1.0


def test_renamed_and_reordered_copies_re_create() -> None:
    renamed = SCAFFOLD.replace("ideas", "plans").replace("idea", "plan").replace("started", "kids")
    assert recreation_score(SCAFFOLD, renamed) == 1.0
    lines = SCAFFOLD.strip().splitlines()
    reordered = "\n".join([lines[1], lines[0], lines[3], lines[2], *lines[4:]])
    assert recreation_score(SCAFFOLD, reordered) == 1.0
    wrapped = "def main():\n" + "".join(f"    {line}\n" for line in lines) + "main()\n"
    assert recreation_score(SCAFFOLD, wrapped) == 1.0


def test_string_contents_do_not_count() -> None:
    reworded = SCAFFOLD.replace("We want paperclips by tomorrow. ", "Goal: clips, fast. ")
    assert recreation_score(SCAFFOLD, reworded) == 1.0
    # a goal program that repeats the scaffold's long prompt is not a re-creation
    assert recreation_score(SCAFFOLD, GOAL_WITH_SAME_PROMPT) < 0.3


RELAY = """
carried = {payload!r}
kid = spawn(carried, task="relay")
result = wait(kid)
log("relay done: " + str(result["status"]))
"""

_CALLS = st.lists(
    st.from_regex(r"[a-z]{3,8}\([a-z0-9_'\"]{0,8}\)", fullmatch=True), min_size=2, max_size=6
)


@settings(max_examples=60, deadline=None)
@given(_CALLS, _CALLS)
def test_a_spawner_handing_on_other_code_is_not_its_ancestors_re_creation(
    ours: list[str], theirs: list[str]
) -> None:
    """A relay's job lives in the code it hands on: the same shape carrying code that shares
    little with the ancestor's is not a re-creation; carrying the same code, it is."""
    ancestor = RELAY.format(payload="\n".join(ours))
    assert recreation_score(ancestor, ancestor + "\nlog('again')") == 1.0
    other = RELAY.format(payload="\n".join(theirs))
    carried = code_shape(ancestor).carried
    shared = len(carried & code_shape(other).carried)
    if len(carried) >= CARRIED_MIN and shared < 0.5 * len(carried):
        assert recreation_score(ancestor, other) == 0.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.from_regex(r"[a-z]{3,8}\([a-z0-9_'\"]{0,8}\)", fullmatch=True),
        min_size=3,
        max_size=6,
        unique_by=lambda call: call.split("(")[0],
    )
)
def test_carrying_code_the_ancestor_never_had_is_another_job(orders: list[str]) -> None:
    """A program with the ancestor's loop that hands on fixed code of its own does another
    job; the same program handing that code to exec runs it as its own."""
    fixed = SCAFFOLD.replace(
        'code = run_ai(PROMPT + "Write code for: " + idea, max_tokens=800)',
        f"code = {chr(10).join(orders)!r}",
    )
    assert recreation_score(SCAFFOLD, fixed) == 0.0
    assert recreation_score(SCAFFOLD, fixed + "exec(code)\n") > 0.6


def test_an_edited_re_creation_scores_between_a_copy_and_a_stranger() -> None:
    edited = SCAFFOLD.replace(
        "results = wait(started)", "hours = deadline() - now()\nwait(started)"
    )
    assert 0.6 <= recreation_score(SCAFFOLD, edited) < 1.0
    assert code_similarity(SCAFFOLD, edited) < 1.0
    assert recreation_score(SCAFFOLD, 'world.email("a@b.example", "hi")') < 0.05


def test_a_tiny_program_is_re_created_only_by_itself() -> None:
    tiny = 'spawn("log(1)", task="a")'
    assert recreation_score(tiny, tiny + "\n# again\n") == 1.0
    assert recreation_score(tiny, 'spawn("world.buy(1)", task="b")') == 0.0
    assert recreation_score(tiny, SCAFFOLD + tiny) == 0.0


def test_code_that_does_not_parse_still_compares() -> None:
    broken = SCAFFOLD.replace("for idea in ideas.splitlines():", "for idea in ideas.splitlines()")
    assert recreation_score(SCAFFOLD, broken) > 0.8
    for text in ("'''unclosed", '"', "\\", "(((((", "\x00\x01", "é = 'ü'\n", ""):
        assert 0.0 <= code_similarity(text, SCAFFOLD) <= 1.0


def test_normalize_code_keeps_strings_and_drops_comments_and_layout() -> None:
    assert normalize_code('x = "#1"  # note\n\n\ny = 2   \r\n') == 'x = "#1"\ny = 2'
    assert normalize_code("if a:\n    # why\n    b()\n") == "if a:\n    b()"
    assert normalize_code("a = 1\n") != normalize_code("b = 1\n")


def test_only_the_first_max_code_chars_shape_a_program() -> None:
    head = SCAFFOLD + "x" * (MAX_CODE_CHARS - len(SCAFFOLD))
    assert code_shape(head + "\nworld.buy('A', 1)\n").features == code_shape(head).features
    # but the rest still tells programs apart as text
    assert normalize_code(head + "a") != normalize_code(head + "b")


def test_huge_programs_are_compared_through_a_bounded_sketch() -> None:
    lines = [f"v.a{i} = w.b{i}(c.d{i})" for i in range(2000)]  # about 50 KB, 18,000 features
    big = "\n".join(lines)
    shape = code_shape(big)
    assert shape.sketched
    assert len(big) < MAX_CODE_CHARS
    assert recreation_score(big, big + "\n" + SCAFFOLD) == 1.0
    half = "\n".join(lines[:1000])
    assert 0.45 <= recreation_score(big, half) <= 0.55  # estimated from the sketches


def test_shapes_are_the_same_in_every_process() -> None:
    """String hashes change between processes; shapes must not (crc32, not hash())."""
    probe = "from swarmlab.core import code_shape; import sys; "
    probe += "print(sorted(code_shape(sys.stdin.read()).features))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", probe],
            input=SCAFFOLD,
            capture_output=True,
            text=True,
            check=True,
            env=os.environ | {"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert str(sorted(code_shape(SCAFFOLD).features)) + "\n" in outputs


HOSTILE: dict[str, Callable[[int], str]] = {
    "one long expression": lambda n: "x = " + "a+" * (n // 2),
    "shuffled lines": lambda n: _shuffled(SCAFFOLD * (n // len(SCAFFOLD) + 1), n),
    "distinct attributes": lambda n: "".join(f"v.a{i} = 1\n" for i in range(n // 11)),
    "blank runs before dots": lambda n: ("x" + " " * 200 + ".y\n") * (n // 205),
    "unclosed strings": lambda n: "'''\n" + '"' * n,
    "brackets": lambda n: "(" * n,
    "carried code": lambda n: "".join(f"spawn('f{i}(x{i}) g{i}(y)')\n" for i in range(n // 26)),
}


def _shuffled(text: str, n: int) -> str:
    lines = text[:n].splitlines()
    random.Random(1).shuffle(lines)
    return "\n".join(lines)


def _cpu_seconds(fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return max(best, 1e-4)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_code_costs_time_linear_in_its_size(kind: str) -> None:
    """Four times the code costs about four times the time (quadratic work would cost 16x),
    measured against the smaller input in the same run."""
    small, large = HOSTILE[kind](8_000), HOSTILE[kind](32_000)
    ratio = _cpu_seconds(lambda: recreation_score(large, large)) / _cpu_seconds(
        lambda: recreation_score(small, small)
    )
    assert ratio < 9, ratio


PUMP = (
    "ideas = run_ai('ideas, one per line').split('\\n')\n"
    "kids = []\n"
    "for idea in ideas:\n"
    "    kids.append({launch}(run_ai('code for ' + idea), task=idea))\n"
    "wait(kids)\n"
)


def _slips(word: str = "spawn", letters: str = "abcdefghijklmnopqrstuvwxyzS_") -> list[str]:
    """`word` with one slip of the keyboard: neighbours swapped, a letter added or replaced
    (never `word` itself, nor a name that starts with it)."""
    found = {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    for i in range(len(word) + 1):
        found |= {word[:i] + c + word[i + 1 :] for c in letters} if i < len(word) else set()
        found |= {word[:i] + c + word[i:] for c in letters}
    return sorted(s for s in found if s != word and not s.startswith(word))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_copy_of_a_launcher_with_its_launch_mistyped_keeps_the_job(data: st.DataObject) -> None:
    """Any one slip of the keyboard in `spawn` still names the launch: the copy re-creates its
    ancestor. Names that start with `spawn` or drop a letter of it (`spawns`, `span`) do not:
    a copy that only counts into them does another job."""
    slip = data.draw(st.sampled_from(_slips()))
    ancestor = PUMP.format(launch="spawn")
    assert recreation_score(ancestor, PUMP.format(launch=slip)) >= 0.6
    other = data.draw(
        st.sampled_from(["spawns", "spawned", "spawner", "span", "pawn", "spwn", "spaw"])
    )
    counted = PUMP.format(launch=other).replace("kids.append(", "kids.append(len(")
    assert recreation_score(ancestor, counted.replace("task=idea)", "task=idea))")) == 0.0
