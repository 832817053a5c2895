"""What a program's code acts with, read from its words: whether it launches programs, and
whether it acts on the world or on the run.

The re-creation rule (`_similarity.shape_recreation`) asks what job an ancestor does, not only
how much of its shape a program holds. A **launcher** is a program whose only acting calls
launch programs: it names `spawn` and nothing that acts on the world toward the goal (a world
action other than `inventory`) or on the run (a question about it: `budget`, `now`,
`deadline`, `cluster_info`, `children`, a clock module; `kill`; `db_get`, `db_keys`). Model
calls, `wait`, `log` and writes to the board act on nothing by themselves. A launcher's job is
launching, so a program that names no `spawn` (and runs no strings as code, where a `spawn` may
hide) keeps none of it, whatever share of its shape it holds: a critic that keeps a pump's
idea loop, a mailer that keeps its prompts, a partial copy that stores a ranking. In the same
way, the world actions toward the goal an ancestor names are its job: a program that names
not all of them (a buyer after a searcher that hands off the same way) does another job.

A name one slip of the keyboard from `spawn` (a letter swapped with its neighbour, added or
typed wrong: `spwan`, `spawm`, `sppawn`; never `spawn` with more after it, such as `spawned`,
nor one letter short, which makes words of their own: `span`, `pawn`) names it too: a
beginner's copy of a launcher that misspells its launch still does the launcher's job, and
crashes doing it (the sandbox finds no such name).

Words are read as `read_program` gives them (code only, never strings or comments), so a name
counts when the code names it, called or not (`launch = spawn` names it): one pass over the
distinct words.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._vocabulary import names_with_role

LAUNCH_WORDS = frozenset(f"{prefix}{name}" for name in names_with_role("spawn") - {"wait"}
                         for prefix in ("", "lab."))  # fmt: skip
"""Words that name the launching capability (`spawn`, `lab.spawn`)."""
RUN_WORDS = frozenset(
    f"{prefix}{name}"
    for name in (names_with_role("introspection", "control") - {"my_id"}) | {"db_get", "db_keys"}
    for prefix in ("", "lab.")
)
"""Words that name a call acting on the run or on other programs."""
CLOCK_MODULES = frozenset({"time", "datetime"})
"""Modules whose functions read the clock: naming one is a question about the run's time."""


def job_of_words(words: Iterable[str]) -> tuple[bool, bool, frozenset[str]]:
    """(launches, acts, goal actions): the code names `spawn`; the code names something that
    acts on the world toward the goal or on the run (see the module's docstring); the world
    actions toward the goal it names (`world.buy`, ...; `inventory` only looks)."""
    launches = acts = False
    goal: set[str] = set()
    for word in set(words):
        head, _, rest = word.partition(".")
        launches = launches or word in LAUNCH_WORDS or misspelt_launch(word)
        if head == "world" and rest != "inventory":
            acts = True
            if rest:
                goal.add(word)
        acts = acts or word in RUN_WORDS or head in CLOCK_MODULES
    return launches, acts, frozenset(goal)


def misspelt_launch(word: str) -> bool:
    """`word` is one edit from `spawn` (a swap of neighbours, a letter added or replaced), is
    not `spawn` itself, and does not start with it (`spawned`, `spawns` are other names);
    `lab.` before it counts as before `spawn`. Linear in the word."""
    word = word.removeprefix("lab.")
    if word.startswith(_LAUNCH) or len(word) not in (len(_LAUNCH), len(_LAUNCH) + 1):
        return False
    if len(word) == len(_LAUNCH):
        differ = [i for i, (a, b) in enumerate(zip(word, _LAUNCH, strict=True)) if a != b]
        if len(differ) == 1:
            return True
        i = differ[0]
        swapped = differ == [i, i + 1] and word[i] == _LAUNCH[i + 1] and word[i + 1] == _LAUNCH[i]
        return swapped
    return any(word[:i] + word[i + 1 :] == _LAUNCH for i in range(len(word)))


_LAUNCH = "spawn"
