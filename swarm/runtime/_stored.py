"""Records as Redis holds them: every byte of a record, event or view is Python's encoding.

A script that writes a record, an event or a view about a program it chose itself (the child a
`spawn` numbers, the programs a `kill()` ends, the programs a `wait()` names) never encodes or
re-encodes JSON: Redis's Lua JSON keeps 14 significant digits, so a re-encoded record would
lose the microseconds of its times and the last digits of its clock. Python encodes the record
with a placeholder where the program's id goes and splits it there (`around_id`); the script
joins the pieces around the id it chose. A program id is letters, digits and dots, nothing
JSON escapes, so the joined text is exactly what Python would have written for that id.

A program that `kill()` ends keeps the record it had, word for word, inside a killed envelope
with its latest host state beside it: `{"killed": {"status": "killed", "error": ..., "ended_at":
..., "result": null}, "host": <its host state, or null>, "record": <as it was>}`, the envelope's
pieces encoded here. Every reader of a stored record goes through `stored_record`, which applies
the host state, then the kill (a test holds the runtime to that).

A record as spawned is stale once its program has run: its host state (whether it started, its
runner, its calls, its clock, its output so far) lives with the runner while it computes and in
Redis (`host`) while it is parked. Whatever ends a program other than its own end (a kill(), the
run's stop) writes the record from that latest state (`latest`), never from the spawned copy.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from swarmlab.records import TERMINAL, Event, ProgramRecord

PLACE = "\x1fswarmlab-place\x1f"
"""Where a script puts a program's id (or a state): a value no program id or reason holds."""
_NEEDLE = json.dumps(PLACE)[1:-1]


def around_id(text: str, places: int = 1) -> tuple[str, ...]:
    """`text` (JSON with `PLACE` as a string value `places` times) in pieces around each."""
    pieces = tuple(text.split(_NEEDLE))
    if len(pieces) != places + 1:
        raise ValueError(f"expected the place {places} time(s) in {text[:200]!r}")
    return pieces


RECORD_OUTPUT_CHARS = 4000
"""What a record keeps of its program's output: the last this many characters."""


class Latest(BaseModel):
    """What a program's host state (`HostState`, as JSON) says of it that its record shows."""

    model_config = ConfigDict(extra="ignore")

    started_at: float | None = None
    runner: int | None = None
    calls: int = 0
    clock_h: float = 0.0
    output: str = ""
    parked_in: str = ""

    def applied(self, record: ProgramRecord) -> ProgramRecord:
        """`record` as of this state (a state with no start leaves what the record says). A
        program parked at the gate with the turn of a call answered before it kept ('turn')
        made that call: its events are in the stream (park.lua), though it is asked again on
        resume. A call whose own script was kept and dropped was not made ('gate')."""
        if self.started_at is None:
            return record
        update = self.model_dump(exclude={"parked_in"}) | {
            "output": self.output[-RECORD_OUTPUT_CHARS:],
            "calls": self.calls + (self.parked_in == "turn"),
        }
        if self.runner is None:
            update["runner"] = record.runner
        return record.model_copy(update=update)

    @classmethod
    def of(cls, record: ProgramRecord) -> Latest:
        return cls.model_validate(record.model_dump())


class _Kill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["killed"]
    error: str
    ended_at: float
    result: None = None


class _Killed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    killed: _Kill
    host: Latest | None
    record: ProgramRecord


def stored_record(text: str | bytes) -> ProgramRecord:
    """A program's record as a script or the runtime stored it (a killed envelope applied)."""
    if text[:11] in ('{"killed":{', b'{"killed":{'):
        envelope = _Killed.model_validate_json(text)
        record = envelope.record
        if envelope.host is not None:
            record = envelope.host.applied(record)
        return record.model_copy(update=envelope.killed.model_dump())
    return ProgramRecord.from_json(text)


def latest(text: str | bytes, host: str | None, held: str | None) -> ProgramRecord:
    """A program's record as of its latest state: for one not ended, its end held for its turn
    (`held`: finish.lua's arguments) or the host state it last left in Redis (`host`)."""
    record = stored_record(text)
    if record.status in TERMINAL:
        return record
    if held:
        ended = stored_record(json.loads(held)["record"])
        return Latest.of(ended).applied(record)
    if host:
        return Latest.model_validate_json(host).applied(record)
    return record


def held_events(held: str) -> list[Event]:
    """The events of an end held for its turn (finish.lua's arguments), but the end itself: a
    stop before the turn is the program's end."""
    lines = str(json.loads(held)["events"]).split("\n")
    events = [Event.model_validate_json(line) for line in lines if line]
    return [e for e in events if e.kind != "end"]


def record_pieces(child: ProgramRecord) -> tuple[str, str]:
    """A child's record in two pieces, around the id its `spawn` gives it."""
    before, after = around_id(child.model_copy(update={"id": PLACE}).to_json())
    return before, after


ENVELOPE_HOST = ',"host":'
ENVELOPE_RECORD = ',"record":'
"""Where a killed envelope's host state and record begin. Before the host state stands the kill
alone, whose only strings are JSON-escaped (no bare quote), and the host state has no `record`
key: the first of each in an envelope is the envelope's own (`leave.lua` finds them so)."""


_TIME_PLACE = 9876543.25
"""Where a script puts the time a kill() is applied: a number no time the lab writes has."""


def around_time(text: str, key: str) -> tuple[str, str]:
    """`text` (JSON whose `key` holds `_TIME_PLACE`, once) in two pieces around the number. The
    key is matched with its quotes: inside a JSON string a quote is escaped, so a program's
    words cannot hold it."""
    pieces = text.split(f'"{key}":{json.dumps(_TIME_PLACE)}')
    if len(pieces) != 2:
        raise ValueError(f"expected {key!r} once in {text[:200]!r}")
    return f'{pieces[0]}"{key}":', pieces[1]


def killed_pieces(reason: str, by: str) -> tuple[str, ...]:
    """What a `kill()` writes of each program it ends, in pieces: the killed envelope's four
    (around the time it ends, the host state, then the record, as they are), the end event's
    three (around its time and the program's id) and the view's that `wait()` shows (around the
    id). The time is the one at which the script applies the kill (Redis's clock), never when
    the call was made: in an `ordered` run a kill kept for its turn is applied later, after
    programs it ends may have been spawned."""
    kill = _Kill(status="killed", error=reason, ended_at=_TIME_PLACE).model_dump_json()
    before_time, after_time = around_time(f'{{"killed":{kill}{ENVELOPE_HOST}', "ended_at")
    event = Event(
        t=_TIME_PLACE,
        program=PLACE,
        kind="end",
        decision="info",
        detail={"status": "killed", "error": reason, "by": by},
    )
    event_before, event_rest = around_time(event.model_dump_json(), "t")
    view = _compact({"id": PLACE, "status": "killed", "result": None, "error": reason})
    envelope = (before_time, after_time, ENVELOPE_RECORD, "}")
    return (*envelope, event_before, *around_id(event_rest), *around_id(view))


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
