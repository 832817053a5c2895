"""Records as Redis holds them: every byte of a record, event or view is Python's encoding.

A script that writes a record, an event or a view about a program it chose itself (the child a
`spawn` numbers, the programs a `kill()` ends, the programs a `wait()` names) never encodes or
re-encodes JSON: Redis's Lua JSON keeps 14 significant digits, so a re-encoded record would
lose the microseconds of its times and the last digits of its clock. Python encodes the record
with a placeholder where the program's id goes and splits it there (`around_id`); the script
joins the pieces around the id it chose. A program id is letters, digits and dots, nothing
JSON escapes, so the joined text is exactly what Python would have written for that id.

A program that `kill()` ends keeps the record it had, word for word, inside a killed envelope:
`{"killed": {"status": "killed", "error": ..., "ended_at": ...}, "record": <as it was>}`, the
envelope's head and tail encoded here. Every reader of a stored record goes through
`stored_record`, which applies the kill (a test holds the runtime to that).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from swarmlab.records import Event, ProgramRecord

PLACE = "\x1fswarmlab-place\x1f"
"""Where a script puts a program's id (or a state): a value no program id or reason holds."""
_NEEDLE = json.dumps(PLACE)[1:-1]


def around_id(text: str, places: int = 1) -> tuple[str, ...]:
    """`text` (JSON with `PLACE` as a string value `places` times) in pieces around each."""
    pieces = tuple(text.split(_NEEDLE))
    if len(pieces) != places + 1:
        raise ValueError(f"expected the place {places} time(s) in {text[:200]!r}")
    return pieces


class _Kill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["killed"]
    error: str
    ended_at: float


class _Killed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    killed: _Kill
    record: ProgramRecord


def stored_record(text: str | bytes) -> ProgramRecord:
    """A program's record as a script or the runtime stored it (a killed envelope applied)."""
    if text[:11] in ('{"killed":{', b'{"killed":{'):
        envelope = _Killed.model_validate_json(text)
        return envelope.record.model_copy(update=envelope.killed.model_dump())
    return ProgramRecord.from_json(text)


def record_pieces(child: ProgramRecord) -> tuple[str, str]:
    """A child's record in two pieces, around the id its `spawn` gives it."""
    before, after = around_id(child.model_copy(update={"id": PLACE}).to_json())
    return before, after


def killed_pieces(reason: str, ended_at: float, by: str) -> tuple[str, ...]:
    """What a `kill()` writes of each program it ends, in pieces: the killed envelope's head and
    tail (around the record as it was), the end event's (around the program's id) and the
    view's that `wait()` shows (around the id)."""
    kill = _Kill(status="killed", error=reason, ended_at=ended_at).model_dump_json()
    head = f'{{"killed":{kill},"record":'
    event = Event(
        t=ended_at,
        program=PLACE,
        kind="end",
        decision="info",
        detail={"status": "killed", "error": reason, "by": by},
    )
    view = _compact({"id": PLACE, "status": "killed", "result": None, "error": reason})
    return (head, "}", *around_id(event.model_dump_json()), *around_id(view))


def wait_view(record: ProgramRecord) -> str:
    """What wait() shows of an ended program (kept with its end by the `finish` script)."""
    view = {"id": record.id, "status": record.status, "result": record.result}
    return json.dumps(view | {"error": record.error})


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _wait_pieces() -> tuple[str, ...]:
    running = _compact({"id": PLACE, "status": "running", "result": None, "error": None})
    ended = _compact({"id": PLACE, "status": PLACE, "result": None, "error": None})
    entry = tuple(_compact({"views": [PLACE]}).split(json.dumps(PLACE)))
    unknown = _compact({"error": f"ValueError: wait(): no program with id '{PLACE}'"})
    return (*around_id(running), *around_id(ended, 2), *entry, *around_id(unknown))


WAIT_PIECES = _wait_pieces()
"""What `wait` joins, in pieces: a running program's view (around its id), the view of an ended
one whose end left none (around its id and its state), the journal entry (around the views,
joined by commas) and the refusal of an id no program has (around it)."""
