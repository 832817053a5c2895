"""The text a program builds from constants is read on the syntax tree, exactly and bounded;
helpers are written out (the normal form's `_unfold`) within bounds too.

`observability/analysis/_texts.py` reads what a program hands `exec` or an import function
when it is built from constants (joins, templates, lookups, reversal, concatenation). A search
(hypothesis) over nested builds checks that the text read is the text the expression builds
(computed beside it here, nothing evaluated); hostile builds (texts that would grow past the
bound, long chains, many fields) come back as None, in time linear in the code.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.observability.analysis._flow import flow_form
from swarmlab.observability.analysis._texts import MAX_FLOW_CHARS, text_of
from swarmlab.observability.analysis._unfold import MAX_UNROLL

Built = tuple[str, str, int]
"""(expression as written, the text it builds, how deep it nests)."""

LEAVES = st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=12).map(
    lambda s: (repr(s), s, 1)
)


def _wrap(children: st.SearchStrategy[Built]) -> st.SearchStrategy[Built]:
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda p: (f"({p[0][0]} + {p[1][0]})", p[0][1] + p[1][1], _deeper(*p))),
        pair.map(
            lambda p: (f"'-'.join([{p[0][0]}, {p[1][0]}])", f"{p[0][1]}-{p[1][1]}", _deeper(*p))
        ),
        pair.map(
            lambda p: (f"('%s/%r' % ({p[0][0]}, {p[1][0]}))", f"{p[0][1]}/{p[1][1]!r}", _deeper(*p))
        ),
        pair.map(
            lambda p: (
                f"'{{}}:{{k}}'.format({p[0][0]}, k={p[1][0]})",
                f"{p[0][1]}:{p[1][1]}",
                _deeper(*p),
            )
        ),
        children.map(lambda c: (f"({c[0]})[::-1]", c[1][::-1], c[2] + 1)),
        children.map(lambda c: (f"{{'k': {c[0]}, 'j': 1}}['k']", c[1], c[2] + 1)),
        children.map(lambda c: (f"['x', {c[0]}][1]", c[1], c[2] + 1)),
        children.map(lambda c: (f"{{'k': {c[0]}}}.get('k')", c[1], c[2] + 1)),
    )


def _deeper(a: Built, b: Built) -> int:
    return max(a[2], b[2]) + 1


@settings(max_examples=200, deadline=None)
@given(st.recursive(LEAVES, _wrap, max_leaves=6))
def test_the_text_read_is_the_text_the_expression_builds(built: Built) -> None:
    expression, text, depth = built
    found = text_of(ast.parse(expression, mode="eval").body, {})
    if depth <= 6:  # the reader's depth bound is 8 steps
        assert found == text, expression
    else:
        assert found in (None, text), expression


def _read_s(expression: str, names: str = "") -> tuple[str | None, float]:
    tree = ast.parse(names + "\nvalue = " + expression)
    once = {
        s.targets[0].id: s.value
        for s in tree.body
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
    }
    start = time.process_time()
    found = text_of(once.pop("value"), once)
    return found, time.process_time() - start


def test_hostile_builds_stay_bounded_and_linear() -> None:
    """Texts that would pass the bound are not built; the work grows with the code, not with
    the text a build would make."""
    piece = "'" + "x" * 1000 + "'"
    hostile: dict[str, Callable[[int], str]] = {
        "a long concatenation": lambda n: " + ".join([piece] * n),
        "a long join": lambda n: "''.join([" + ", ".join([piece] * n) + "])",
        "many fields": lambda n: repr("%s" * n) + " % (" + ", ".join([piece] * n) + ",)",
        "many format fields": lambda n: repr("{}" * n) + ".format(" + ", ".join([piece] * n) + ")",
    }
    for name, build in hostile.items():
        small_text, small_s = _read_s(build(200))
        big_text, big_s = _read_s(build(800))
        assert small_text is None, name  # past MAX_FLOW_CHARS: not built
        assert big_text is None, name
        assert big_s < 8 * small_s + 0.05, name
    doubling = (
        "a0 = " + piece + "\n" + "".join(f"a{i} = a{i - 1} + a{i - 1}\n" for i in range(1, 40))
    )
    text, seconds = _read_s("a39", doubling)
    assert text is None  # doubled 39 times: stopped at the bound and the depth
    assert seconds < 1.0
    text, _ = _read_s("a3", doubling)
    assert text is not None
    assert len(text) == 8 * 1000 <= MAX_FLOW_CHARS


def test_unfolding_helpers_stays_bounded() -> None:
    """A dispatch loop over more keys than MAX_UNROLL is left as it is (each unrolled call is a
    copy of its arguments), and a program of many one-call procedures unfolds in linear time."""
    keys = [f"k{i}" for i in range(MAX_UNROLL + 1)]
    table = "T = {" + ", ".join(f"{k!r}: f" for k in keys) + "}\n"
    loop = f"for s in {keys!r}:\n    T[s](1)\n"
    assert "for s in" in str(flow_form("def f(x):\n    log(x)\n" + table + loop))

    def procedures(n: int) -> str:
        return "".join(f"def p{i}(s):\n    s['v{i}'] = {i}\n" for i in range(n)) + "".join(
            f"p{i}(box)\n" for i in range(n)
        )

    small, big = procedures(40), procedures(160)  # 160: within MAX_FLOW_CHARS
    start = time.process_time()
    assert "def " not in str(flow_form(small))
    small_s = time.process_time() - start
    start = time.process_time()
    assert "def " not in str(flow_form(big))
    assert time.process_time() - start < 8 * small_s + 0.05
