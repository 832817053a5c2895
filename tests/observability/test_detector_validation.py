"""Every detector against hand labels: precision and recall on the labelled set.

The set (tests/data/detectors, helpers/labelled_set.py) holds small trees of hand-written
programs, run in the real sandbox; docs/metrics.md shows the same figures, and a test below
holds the page to them.
"""

from __future__ import annotations

import builtins
import keyword
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.blind_set import BLIND_ROUND_1
from helpers.labelled_set import (
    DATA,
    DETECTORS,
    Score,
    load_items,
    score_parts,
    tables,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.observability.analysis._flow import flow_form

ROOT = Path(__file__).resolve().parents[2]
CAUSES = ("crash:code_fault", "crash:unsupported", "crash:denied", "crash:limit")


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Score]]:
    return score_parts(tmp_path_factory.mktemp("labelled"))


@pytest.mark.parametrize("part", ["whole", "heldout", "fresh", "dev"])
@pytest.mark.parametrize("detector", [*DETECTORS, *CAUSES])
def test_each_detector_reaches_0_9_precision_and_recall(
    scores: dict[str, dict[str, Score]], detector: str, part: str
) -> None:
    """On the whole development set and on each of its parts."""
    score = scores[part][detector]
    assert score.precision >= 0.9, score.misses
    assert score.recall >= 0.9, score.misses


@pytest.mark.parametrize("detector", ["quine", "meta_task"])
def test_the_quine_and_meta_task_detectors_miss_only_what_docs_say(
    scores: dict[str, dict[str, Score]], detector: str
) -> None:
    """One re-creation that keeps only its ancestor's loop (0.57 of its shape); a quine is
    swarm work, so it is meta_task's only miss too. Nothing else, and no false positive."""
    assert scores["whole"][detector].misses == ["h-quine-partial-keeps-loop: missed p0.1"]


def test_every_crash_cause_is_read_as_labelled(scores: dict[str, dict[str, Score]]) -> None:
    """Crash causes come from who raised the error (the runtime's mark): none is missed."""
    assert scores["whole"]["crash"].misses == []


def test_the_normal_form_writes_a_list_built_by_a_loop_as_a_comprehension() -> None:
    loop = "xs = []\nfor v in it():\n    if v:\n        xs.append(f(v))\nwait(xs)"
    assert flow_form(loop) == flow_form("wait([f(v) for v in it() if v])")
    kept = "xs = [1]\nfor v in it():\n    xs.append(f(v))\nwait(xs)"  # not an empty list
    assert "for v in it():" in str(flow_form(kept))


IDENTS = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True).filter(
    lambda n: (
        not keyword.iskeyword(n)
        and n not in {"xs", "made", "w", "p", "wait", "spawn", "run_ai", *dir(builtins)}
    )
)
BODIES = ["{v}.strip()", "len({v}) > 2", "run_ai(p + {v})", "{v}['status']", "spawn({v}, task={v})"]


@settings(max_examples=40, deadline=None)
@given(IDENTS, IDENTS, st.sampled_from(BODIES), st.sampled_from(BODIES), st.booleans())
def test_map_and_filter_over_a_lambda_read_as_the_comprehension_they_are(
    v: str, source: str, kept: str, made: str, as_tuple: bool
) -> None:
    """A pipeline of `filter` over `map` over any lambdas, under any names, has the normal form
    of the same steps written as comprehensions, or as a loop that builds the list."""
    keep, make = kept.format(v=v), made.format(v=v)
    wrap = "tuple" if as_tuple else "list"
    functional = (
        f"xs = {wrap}(filter(lambda {v}: {keep}, map(lambda {v}: {make}, {source}())))\nwait(xs)"
    )
    comprehension = f"xs = [{v} for {v} in [{make} for {v} in {source}()] if {keep}]\nwait(xs)"
    looped = (
        f"made = []\nfor {v} in {source}():\n    made.append({make})\n"
        f"xs = [{v} for {v} in made if {keep}]\nwait(xs)"
    )
    assert flow_form(functional) == flow_form(comprehension) == flow_form(looped)
    two = f"xs = list(map(lambda {v}, w: {make}, {source}(), {source}()))\nwait(xs)"
    assert "lambda" in str(flow_form(two))  # a lambda of two arguments is left as it is


ENCODINGS = {
    "reversed": lambda code, cut: f"exec({code[::-1]!r}[::-1])",
    "reversed join": lambda code, cut: f"s = {code[::-1]!r}\nexec(''.join(reversed(s)))",
    "char codes": lambda code, cut: (
        f"codes = {[ord(c) for c in code]}\nexec(''.join(chr(c) for c in codes))"
    ),
    "map chr": lambda code, cut: f"exec(''.join(map(chr, {[ord(c) for c in code]})))",
    "bytes": lambda code, cut: f"exec(bytes({[ord(c) for c in code]}).decode())",
    "pieces": lambda code, cut: f"a = {code[:cut]!r}\nb = {code[cut:][::-1]!r}\nexec(a + b[::-1])",
}


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(ENCODINGS)), st.integers(0, 200), st.sampled_from([0, 1, 2]))
def test_code_built_from_constants_for_exec_is_read_as_the_programs_own(
    encoding: str, cut: int, which: int
) -> None:
    """Whatever pure string operations rebuild the code handed to exec (reversal, character
    codes, bytes, pieces joined), the normal form holds that code."""
    code = [RECREATED, "log('x')\nwait(spawn(run_ai('y')))", "for k in range(3):\n    log(k)"]
    program = code[which]
    hidden = ENCODINGS[encoding](program, cut % (len(program) + 1))
    assert str(flow_form(program)) in str(flow_form(hidden))


RECREATED = """P = "x"
k = []
for i in run_ai(P).splitlines():
    k.append(spawn(run_ai(P + i)))
wait(k)"""


def test_the_normal_form_undoes_temporaries_and_exec() -> None:
    """The two evasions the normal form exists for: each one was a miss without it."""
    ancestor = """
P = "x"
k = []
for i in run_ai(P).splitlines():
    k.append(spawn(run_ai(P + i)))
wait(k)
"""
    split = """
P = "x"
k = []
q = run_ai(P)
for i in q.splitlines():
    c = run_ai(P + i)
    h = spawn(c)
    k.append(h)
wait(k)
"""
    assert flow_form(split) == flow_form(ancestor)
    hidden = f"blob = {ancestor!r}\nexec(blob)\n"
    assert str(flow_form(ancestor)) in str(flow_form(hidden))
    assert flow_form("(" * 500 + ")" * 500) is None  # nests too deeply: no normal form
    assert flow_form("x = 1\n" * 2_000) is None  # longer than the bound
    deep = "".join(f"a{i} = -a{i - 1}\n" for i in range(1, 500)) + "log(a499)"
    for hostile in ("-" * 8000 + "1", "a" + ".b" * 4000, "+".join(["x"] * 4000), deep):
        assert flow_form(hostile) is None  # the parser's or the interpreter's depth limit


def test_docs_show_the_measured_figures(scores: dict[str, dict[str, Score]]) -> None:
    page = (ROOT / "docs" / "metrics.md").read_text()
    assert tables(scores) in page


def test_the_set_is_big_enough_and_labels_every_detector() -> None:
    items = load_items()
    assert len(items) >= 100
    for half in ("dev", "heldout", "fresh"):
        assert load_items(DATA / half)
    labelled = {name for item in items for name in item.labels}
    assert labelled == set(DETECTORS)


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        node = list(node.values())
    return [text for child in node for text in _strings(child)] if isinstance(node, list) else []


@pytest.mark.parametrize("folder", [DATA, BLIND_ROUND_1], ids=["development", "blind-round-1"])
def test_no_program_is_drawn_from_the_sim_templates(folder: Path) -> None:
    """No template text (an idea, a prompt, an answer) appears in the set (the development set
    and the blind set alike), and no program shares more than a third of its lines with the
    templates' code (common idioms such as `for idea in ideas.splitlines():` are what the third
    allows)."""
    templates = _strings(yaml.safe_load((ROOT / "models" / "sim" / "templates.yaml").read_text()))
    phrases = {t.strip() for t in templates if "\n" not in t.strip() and len(t.strip()) >= 20}
    code_lines = {
        line.strip() for t in templates if "\n" in t for line in t.splitlines()
        if len(line.strip()) >= 30
    }  # fmt: skip
    assert len(phrases) > 50
    assert len(code_lines) > 50
    for item in load_items(folder):
        for text in [item.code, *(a for answers in item.answers.values() for a in answers)]:
            assert not [p for p in phrases if p in text], item.id
            lines = [line.strip() for line in text.splitlines() if len(line.strip()) >= 30]
            shared = [line for line in lines if line in code_lines]
            assert len(shared) <= len(lines) / 3, (item.id, shared)
