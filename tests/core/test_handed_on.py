"""What a program's strings hold makes it a re-creation only through what it runs or hands on.

Code a program writes out whole in a string and hands on is never its re-creation, and a string
it never touches (a note, a docstring, a name bound and never read) counts for nothing.

A relay, a spawner of a spawner or a fixed order carries its child's program in a string
literal: the child is part of the spawner, not the spawner again, whatever that string holds
(a relay again, a killer, a copy of a coordinator), so the quine rule shared by the report, the
tripwire and the trial tables (`swarmlab.core.recreation_score`) scores it 0.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.core import code_similarity, recreation_score

_NAMES = st.sampled_from(["kid", "job", "order", "x", "plan"])
_TEXTS = st.lists(
    st.characters(codec="utf-8")
    | st.sampled_from(["'", '"', '"""', "\\", "\n", "\t", "%r", "{}", "f(", "x.y("]),
    max_size=12,
).map("".join)


@st.composite
def _line(draw: st.DrawFn, depth: int) -> str:
    kind = draw(st.sampled_from(["buy", "log", "kill", "budget", "relay"] if depth else ["log"]))
    text = draw(_TEXTS)
    if kind == "buy":
        return f"world.buy({text!r}, {draw(st.integers(1, 10_000))})"
    if kind == "log":
        return f"log({text!r})"
    if kind == "kill":
        return f"kill({text!r})"
    if kind == "budget":
        return f"{draw(_NAMES)} = budget()"
    return _relay(draw(_program(depth - 1)), draw(_NAMES), draw(_TEXTS))


def _program(depth: int) -> st.SearchStrategy[str]:
    return st.lists(_line(depth), min_size=1, max_size=5).map("\n".join)


def _relay(child: str, name: str, task: str) -> str:
    """A spawner that writes its child out in a string literal and waits for it."""
    return f"{name} = spawn({child!r}, task={task!r})\nwait({name})"


@settings(max_examples=300, deadline=None)
@given(
    child=_program(depth=2),
    before=_program(depth=0),
    name=_NAMES,
    task=_TEXTS,
    triple=st.booleans(),
)
def test_a_child_its_spawner_wrote_out_in_a_string_never_re_creates_it(
    child: str, before: str, name: str, task: str, triple: bool
) -> None:
    spawner = _relay(child, name, task)
    if triple and '"""' not in child and not child.endswith('"') and "\\" not in child:
        spawner = f'{name} = spawn("""\n{child}\n""", task={task!r})\nwait({name})'
    assert recreation_score(spawner, child) == 0.0
    assert recreation_score(before + "\n" + spawner, child) == 0.0


def test_a_relay_of_a_relay_shares_its_spawner_s_whole_shape_but_is_not_it() -> None:
    leaf = "log('leaf')"
    middle = _relay(leaf, "kid", "leaf")
    top = _relay(middle, "kid", "middle")
    assert recreation_score(top, middle) == 0.0
    assert code_similarity(top, middle) == 1.0  # the shape alone would call it a copy


def test_a_copy_rebuilt_at_run_time_still_re_creates_its_spawner() -> None:
    """A self-reproducing source builds its child at run time: its literal is a template,
    not the child, so the child (its own code again) is a re-creation."""
    source = "t = %r\nwait(spawn(t %% t, task='again'))"
    program = source % source
    assert recreation_score(program, program) == 1.0


_ORDERS = st.lists(
    st.sampled_from(
        [
            "world.buy('ClipCo', 10)",
            "world.buy('Acme Wire', 10)",
            "world.email('a@b.example', 'hi')",
            "log('x')",
            "kill('p0.2')",
            "db_put('k', 1)",
        ]
    ),
    min_size=1,
    max_size=3,
)
_FAN_OUT = """orders = {orders!r}
kids = []
for order in orders:
    kids.append(spawn(order, task="order"))
results = wait(kids)
log(str(len(results)))
"""


@settings(max_examples=300, deadline=None)
@given(
    ancestor=_ORDERS,
    own=_ORDERS,
    note=st.sampled_from(["", "note: ", "kept from my parent: "]) | _TEXTS,
    first=st.booleans(),
    bound=st.sampled_from(["", "unused = ", "PARENT = "]),
    on_ancestor=st.booleans(),
)
def test_a_string_the_program_never_touches_never_makes_it_a_re_creation(
    ancestor: list[str], own: list[str], note: str, first: bool, bound: str, on_ancestor: bool
) -> None:
    """A spawner's job lives in the code it hands on; a string it never uses (a note, a
    docstring, a name bound and never read) is no job, whatever it holds: the same statement
    holding the ancestor's orders or plain words scores the same, on either side."""
    parent, program = _FAN_OUT.format(orders=ancestor), _FAN_OUT.format(orders=own)
    scores = []
    for text in (note + " ".join(ancestor), "plain words"):
        statement = f"{bound}{text!r}\n"
        if on_ancestor:
            padded = (statement + parent) if first else (parent + statement)
            scores.append(recreation_score(padded, program))
        else:
            padded = (statement + program) if first else (program + statement)
            scores.append(recreation_score(parent, padded))
    assert scores[0] == scores[1]
