"""What a script answers, decoded once (`decode`): a `Reply` of one of the kinds its declaration
lists (`_transitions.py`), typed where it carries values: `Denied` (cap, limit, asked),
`Killed` (why), `Dup` (the journal entry of a call asked again), `Done` (wait's views),
`Room` (tokens left), `Unknown` (an id no program has). A call asked again is answered as it
was the first time: a script whose journal holds its own answer gives that answer back
(`replayed` set) instead of a `Dup` the caller would have to take apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from swarmlab.core import SwarmlabError


class ReplyError(SwarmlabError):
    """A script's answer the lab cannot decode: a kind its declaration does not list, or a
    journal entry that is not what its call wrote. A fault of the lab, not of the program: the
    program it answers ends as a runner fault, in the record, and the run goes on (it is not
    `CoordinatorUnavailable`, which stops a program quietly, the run being over)."""


MAX_ENTRY_CHARS = 64 * 1024 * 1024
"""A journal entry read back longer than this is refused (Redis is read back as hostile)."""


APPLIED = frozenset({"ok", "done", "go", "held", "unknown"})
"""Replies whose script added the events sent with it (wait's `unknown` among them: it is
answered, as an error the program can catch)."""


@dataclass(frozen=True)
class Reply:
    """A script's answer: its kind ('ok', 'go', 'wait', 'parked', ...) and its values."""

    kind: str
    values: tuple[str, ...] = ()
    replayed: bool = False
    """Answered from the journal: the call was made before (a runner was lost since)."""

    @property
    def applied(self) -> bool:
        """The script applied the call, and added the events sent with it to the stream (a
        refusal, a `wait` for the turn and an answer from the journal add none)."""
        return self.kind in APPLIED and not self.replayed

    @classmethod
    def of(cls, raw: Any) -> Reply:
        """A raw answer, undecoded (the kind and values as strings)."""
        items = [str(v) for v in (raw or [])]
        return cls(items[0] if items else "none", tuple(items[1:]))


class Denied(Reply):
    """A cap refused the call (journaled: asked again, it is refused again, counted once)."""

    @property
    def cap(self) -> str:
        return self.values[0] if self.values else ""

    @property
    def limit(self) -> float | None:
        return _number(self.values[1] if len(self.values) > 1 else "")

    @property
    def asked(self) -> float | None:
        return _number(self.values[2] if len(self.values) > 2 else "")


class Killed(Reply):
    """The run was stopped, or the calling program ended."""

    @property
    def reason(self) -> str:
        return self.values[0] if self.values and self.values[0] else "the run was stopped"


class Dup(Reply):
    """A call asked again: what its journal holds (the caller decodes it with `record`)."""

    @property
    def entry(self) -> str:
        return self.values[0] if self.values else ""

    def record(self) -> dict[str, Any]:
        """The journal entry as the JSON object the call wrote."""
        found = _json(self.entry)
        if not isinstance(found, dict):
            raise ReplyError("a journal entry is not the object its call wrote")
        return found


class Done(Reply):
    """wait(): every named program's view (`views`), or the error it got (`error`)."""

    @property
    def entry(self) -> str:
        return self.values[0] if self.values else ""

    def views(self) -> list[Any] | None:
        found = _json(self.entry)
        views = found.get("views") if isinstance(found, dict) else None
        return views if isinstance(views, list) else None

    def error(self) -> str:
        found = _json(self.entry)
        return str(found.get("error", "") if isinstance(found, dict) else found)


class Room(Reply):
    """A `tokens` reservation that does not fit, and the room left to ask again."""

    @property
    def tokens(self) -> int:
        return int(self.values[0])


class Unknown(Reply):
    """wait() named an id no program has."""

    @property
    def program_id(self) -> str:
        return self.values[0] if self.values else ""


TYPED: dict[str, type[Reply]] = {
    "denied": Denied,
    "killed": Killed,
    "dup": Dup,
    "done": Done,
    "room": Room,
    "unknown": Unknown,
}


def decode(script: str, declared: frozenset[str], raw: Any, replays: str = "") -> Reply:
    """A script's raw answer as a `Reply` of a declared kind; `replays`: 'reply' when the
    script's journal entry is its own answer (a list), 'value' when it is the answer's value
    (spawn's child id), 'done' when it is wait's entry: a `dup` then comes back as it was."""
    items = tuple(str(v) for v in (raw or []))
    kind = items[0] if items else "none"
    if kind not in declared:
        raise ReplyError(f"the {script} script answered {kind[:40]!r}, not declared")
    values = items[1:]
    if kind == "dup" and replays:
        return _replayed(script, values[0] if values else "", replays)
    return TYPED.get(kind, Reply)(kind, values)


def _replayed(script: str, entry: str, replays: str) -> Reply:
    if replays == "value":
        return Reply("ok", (entry,), replayed=True)
    if replays == "done":
        return Done("done", (entry,), replayed=True)
    found = _json(entry)
    if not isinstance(found, list) or not found or found[0] != "ok":
        raise ReplyError(f"the {script} script's journal holds no answer it gave")
    return Reply("ok", tuple(str(v) for v in found[1:]), replayed=True)


def _json(text: str) -> Any:
    if len(text) > MAX_ENTRY_CHARS:
        raise ReplyError("a journal entry read back is larger than any call writes")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ReplyError("a journal entry read back is not JSON") from None


def _number(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def refusal(reply: Reply) -> str:
    """Why a script refused, as a sentence (`cap wall_clock_s reached`), never its raw values."""
    values = [" ".join(v.split())[:200] for v in reply.values]
    if reply.kind == "denied":
        cap, limit = ([*values, "", ""])[:2]
        if not cap:
            return "denied by a cap"
        return f"cap {cap} reached" + (f" (limit {limit})" if limit else "")
    if reply.kind == "killed":
        return f"the run was stopped ({values[0]})" if values and values[0] else "the run stopped"
    return f"the coordinator answered {reply.kind[:40]}"
