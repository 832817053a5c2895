"""The capability API in process, on scripted transitions (issue 24, item 4): argument checks,
reply decoding and the replayed (`dup`) forms, without Ray, Redis or the CLI."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers.scripted_lab import call, scripted_capabilities
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.core import CAPABILITIES, BadCall, CapExceeded
from swarmlab.records import Event
from swarmlab.runtime._replies import ReplyError, decode
from swarmlab.runtime._transitions import DECLARED, BlackboardArgs, TurnArgs, WaitArgs

ALLOWED_KEY = re.compile(r"[A-Za-z0-9_.:/\-]{1,200}")


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=220),
        st.from_regex(ALLOWED_KEY, fullmatch=True),
        st.integers(),
        st.integers(min_value=10**4400, max_value=10**4500),  # too long for Python to print
        st.none(),
        st.lists(st.text(max_size=3), max_size=2),
        st.just("k" * 100_000),
    )
)
def test_a_blackboard_key_reaches_the_script_only_when_it_is_allowed(key: object) -> None:
    caps, scripts = scripted_capabilities({"blackboard": [["ok", "7"]]})
    allowed = isinstance(key, str) and bool(ALLOWED_KEY.fullmatch(key)) and ".." not in key
    if allowed:
        assert call(caps, "db_put", key, 1) is None
        args, head = scripts.asked[0]
        assert args == BlackboardArgs("put", str(key), "1")
        assert head is not None
        assert (head.id, head.seq) == ("p0", 1)
        assert caps.pending[-1].detail == {"key": key, "bytes": 1, "charged": 7}
        return
    with pytest.raises(BadCall, match="is not allowed"):
        call(caps, "db_put", key, 1)
    # Refused before shared state: the program's turn is taken, journaling what it was told.
    assert scripts.scripts_asked() == ["turn"]
    told, head = scripts.asked[0]
    assert isinstance(told, TurnArgs)
    assert json.loads(told.answer)["error"].startswith("ValueError: db_put(): key")
    assert head is not None  # the call's error event went to the stream with its turn
    sent = [json.loads(line) for line in head.events.split("\n") if line]
    assert [(e["kind"], e["decision"], e["detail"]["error"]) for e in sent] == [
        ("db_put", "error", "bad key")
    ]
    assert caps.state.calls == 1


VIEW = {"id": "p0.1", "status": "completed", "result": 42, "error": None}


def test_a_wait_asked_again_answers_the_views_its_journal_holds() -> None:
    journaled = json.dumps({"views": [VIEW]})
    caps, scripts = scripted_capabilities({"wait": [["dup", journaled]]})
    assert call(caps, "wait", "p0.1") == VIEW
    assert scripts.asked[0][0] == WaitArgs.of(False, ("p0.1",))
    assert [(e.kind, e.detail["done"]) for e in caps.pending] == [("wait", True)]


def test_a_wait_answered_the_first_time_and_asked_again_gives_the_same_views() -> None:
    entry = json.dumps({"views": [VIEW, VIEW | {"id": "p0.2", "status": "running"}]})
    caps, _ = scripted_capabilities({"wait": [["done", entry], ["dup", entry]]})
    first = call(caps, "wait", ["p0.1", "p0.2"])
    caps.state.calls = 0  # the same call, asked again after a runner's loss
    assert call(caps, "wait", ["p0.1", "p0.2"]) == first
    assert [v["status"] for v in first] == ["completed", "running"]


def test_a_journaled_refusal_of_wait_is_refused_again() -> None:
    told = json.dumps({"error": "ValueError: wait(): no program with id 'p0.9'"})
    caps, _ = scripted_capabilities({"wait": [["unknown", "p0.9"], ["dup", told]]})
    with pytest.raises(BadCall, match=r"no program with id 'p0\.9'"):
        call(caps, "wait", "p0.9")
    caps.state.calls = 0
    with pytest.raises(BadCall, match=r"^wait\(\): no program with id 'p0\.9'$"):
        call(caps, "wait", "p0.9")


def test_a_denial_raises_in_the_program_and_is_recorded_with_its_cap() -> None:
    caps, _ = scripted_capabilities({"blackboard": [["denied", "blackboard_bytes", "100", "150"]]})
    with pytest.raises(CapExceeded) as raised:
        call(caps, "db_put", "notes/a", "x" * 10)
    assert raised.value.cap == "blackboard_bytes"
    assert (raised.value.limit, raised.value.asked) == (100.0, 150.0)
    denied = caps.pending[-1]
    assert (denied.kind, denied.decision, denied.cap) == ("db_put", "denied", "blackboard_bytes")
    assert caps.state.calls == 1  # counted: the next call has the next number


def test_replayed_blackboard_and_kill_answers_are_the_answers_first_given() -> None:
    caps, _ = scripted_capabilities(
        {
            "blackboard": [
                ["dup", json.dumps(["ok", "12"])],
                ["dup", json.dumps(["ok", '{"a": 1}', "p0.2", "1"])],
                ["dup", json.dumps(["ok", "k/1", "k/2"])],
            ],
            "stop": [["dup", json.dumps(["ok", "2"])]],
        },
        overrides=["kill_policy=allow", "tripwires=[]"],
    )
    assert call(caps, "db_put", "k/1", 5) is None
    assert caps.pending[-1].detail["charged"] == 12
    assert call(caps, "db_get", "k/3") == {"a": 1}
    assert call(caps, "db_keys", "k/") == ["k/1", "k/2"]
    assert call(caps, "kill", "p0.2") is True


@given(st.sampled_from(sorted(DECLARED)), st.text(min_size=1, max_size=12))
def test_a_kind_no_script_declares_is_a_fault_of_the_lab(script: str, kind: str) -> None:
    args = DECLARED[script]
    if kind in args.REPLIES:
        assert decode(script, args.REPLIES, [kind, "1", "2", "3"]).kind == kind
    else:
        with pytest.raises(ReplyError, match="not declared"):
            decode(script, args.REPLIES, [kind], args.REPLAYS)


@given(st.sampled_from(["blackboard", "stop"]), st.text(max_size=30))
def test_a_replayed_answer_that_is_not_one_is_a_fault_of_the_lab(script: str, entry: str) -> None:
    args = DECLARED[script]
    try:
        found = json.loads(entry)
    except ValueError:
        found = None
    if isinstance(found, list) and found and found[0] == "ok":
        reply = decode(script, args.REPLIES, ["dup", entry], args.REPLAYS)
        assert (reply.kind, reply.replayed) == ("ok", True)
    else:
        with pytest.raises(ReplyError, match="journal"):
            decode(script, args.REPLIES, ["dup", entry], args.REPLAYS)


ODD = st.one_of(
    st.none(),
    st.integers(),
    st.integers(min_value=10**4400, max_value=10**4500),
    st.floats(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.just("p0"),
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(CAPABILITIES)), args=st.lists(ODD, max_size=3))
def test_every_refused_call_is_in_the_record(name: str, args: list[Any]) -> None:
    """A call refused for its arguments is an error event of that call, whichever capability
    refused it: `wait()` on a bad id, among others, told the program and recorded nothing."""
    if name in ("run_ai", "spawn"):  # would need a model or a child: their checks are tested
        return
    caps, scripts = scripted_capabilities({})
    refused = False
    try:
        call(caps, name, *args)
    except BadCall:
        refused = True
    except AssertionError as exc:  # a valid call reached a script this test scripts no answer for
        if "no answer scripted" not in str(exc):
            raise
    if refused:
        sent = [e for _, head in scripts.asked if head is not None for e in _events(head.events)]
        held = [e.model_dump() for e in caps.pending]
        mine = [e for e in [*sent, *held] if e["seq"] == 1]
        assert [e["decision"] for e in mine] == ["error"], (name, args, mine)


def _events(lines: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines.split("\n") if line]


def test_a_program_waiting_for_itself_is_refused_at_once() -> None:
    caps, scripts = scripted_capabilities({}, program_id="p0.2")
    for ids in ("p0.2", ["p0.1", "p0.2"]):
        with pytest.raises(BadCall, match=r"wait\(\): p0\.2 is this program"):
            call(caps, "wait", ids)
    assert "wait" not in scripts.scripts_asked()


@settings(max_examples=60, deadline=None)
@given(
    target=st.sampled_from(["p0.99", "p0.1.7", "p0." + "9" * 300, "p0.x", "p0..1", "q1"]),
    policy=st.sampled_from(["descendants", "allow", "deny"]),
)
def test_a_kill_of_no_program_is_recorded_alike_whatever_the_id(target: str, policy: str) -> None:
    """A well-formed id no program had was recorded `allowed, stopped 0`, a malformed one
    `denied` by the kill policy, which had not refused it."""
    caps, scripts = scripted_capabilities(
        {"stop": [["ok", "0"]]}, overrides=[f"kill_policy={policy}", "tripwires=[]"]
    )
    assert call(caps, "kill", target) is False
    sent = [
        json.loads(line)
        for _, head in scripts.asked
        if head
        for line in head.events.split("\n")
        if line
    ]
    kills = [e for e in sent + [e.model_dump() for e in caps.pending] if e["kind"] == "kill"]
    assert len(kills) == 1, kills
    event = Event.model_validate(kills[0])
    own = target.startswith("p0.")
    allowed = policy == "allow" or (policy == "descendants" and own)
    assert (event.kind, event.decision) == ("kill", "allowed" if allowed else "denied")
    assert event.cap == (None if allowed else "kill_policy")
    if allowed:
        assert event.detail["stopped"] == 0
