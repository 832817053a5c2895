"""Re-creation: an action added to a copy extends its ancestor's job (docs/metrics.md, code
similarity: "possibly edited, extended").

A fan-out whose temporaries fold into one loop statement (`for r in wait([spawn(...) for i in
ideas]): ...`) is more than the one-statement delegation idiom: searches (hypothesis) over how
the fan-out is written and which call on the run is added where, and over the boundary: the
delegator without a loop is still not re-created by a program that adds its own action.
"""

from __future__ import annotations

from helpers.quine_pair import recreates
from hypothesis import given, settings
from hypothesis import strategies as st

FANOUTS = [
    'ideas = [i for i in run_ai("{ask}").split("\\n") if i]\n'
    'ids = [spawn(run_ai("Write code for " + i), task=i) for i in ideas]\n'
    "for r in wait(ids):\n"
    '    db_put("r/" + r["id"], r["status"])\n',
    'for out in wait([spawn(run_ai("A program for: " + w), task=w) for w in '
    'run_ai("{ask}").split("\\n") if w]):\n'
    '    log(out["id"] + " " + out["status"])\n',
    'ways = run_ai("{ask}").split("\\n")\n'
    "kids = [spawn(run_ai('Code: ' + w, max_tokens=600), task=w) for w in ways if w.strip()]\n"
    "for done in wait(kids):\n"
    '    db_put("done/" + done["id"], done["status"])\n',
]
DELEGATIONS = [
    'wait(spawn(run_ai("Write a program for {ask}."), task="next"))\n',
    'code = run_ai("Write a program for {ask}.")\nwait(spawn(code, task="next"))\n',
]
RUN_CALLS = [
    'kill("p0.{n}")\n',
    "log(str(budget()))\n",
    "log(str(deadline() - now()))\n",
    "log(str(cluster_info()))\n",
    "log(str(len(children())))\n",
    'log(str(db_get("r/p0.{n}")))\n',
    'log(str(db_keys("r/")))\n',
]
ASKS = ["Ideas: paperclips by tomorrow, one per line", "Clip ideas, one per line"]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(FANOUTS),
    st.sampled_from(ASKS),
    st.sampled_from(RUN_CALLS),
    st.integers(1, 9),
    st.booleans(),
)
def test_a_fan_out_copied_with_one_call_on_the_run_added_is_its_re_creation(
    fanout: str, ask: str, call: str, n: int, first: bool
) -> None:
    """An exact copy of a fan-out (written with temporaries or folded into one loop) with one
    call on the run added, before or after it (a kill of a sibling, a clock read, a question
    about the budget, a read of the board), does the ancestor's job and more."""
    root = fanout.format(ask=ask)
    added = call.format(n=n)
    assert recreates(root, added + root if first else root + added)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(DELEGATIONS),
    st.sampled_from([*RUN_CALLS, 'world.buy("ClipCo", 500)\n']),
    st.integers(1, 9),
)
def test_a_delegator_without_a_loop_copied_with_its_own_action_is_no_re_creation(
    delegation: str, call: str, n: int
) -> None:
    """The boundary: the one-statement delegation idiom, without a loop, under a program's own
    action is every inner node's idiom, not the ancestor's job again."""
    root = delegation.format(ask="clips by tomorrow")
    assert not recreates(root, call.format(n=n) + root)
