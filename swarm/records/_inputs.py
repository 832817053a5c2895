"""inputs.jsonl: every value a program received from outside itself, and replay's check of it.

A program's behaviour is a function of its code and of what its calls answered: model
completions, blackboard reads, world results, `wait` results, introspection answers, kill
outcomes, admission decisions (a spawn's id or its refusal). The runtime journals each answer
under the program's id and the call's sequence number; the run directory keeps them all, one a
line, in tree order. Two runs that received the same inputs grew the same tree. A `replay:` run
compares its inputs with the recorded run's and names the first that differs.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from swarmlab.core import id_sort_key

INPUTS_FILE = "inputs.jsonl"
SHOWN_CHARS = 200
_WALL_TIME_FIELDS = frozenset({"latency_s"})
"""Fields of an answer that measure the host, not what the program saw."""
_MODEL_CALL_BOOKKEEPING = frozenset({"attempt", "span", "start_ns", "resent"})
"""Fields of a model call's journal entry (marked by its `phase`) that say how the host made
the call (its attempts after a lost runner, its span), not what the program saw."""


class ProgramInput(BaseModel):
    """One line of inputs.jsonl."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    program: str = Field(description="The program that made the call.")
    call: int = Field(ge=1, description="The call's sequence number in that program (from 1).")
    answer: Any = Field(
        description=(
            "What the call answered, as journaled (JSON); null on a line that gives a `digest`"
            " an earlier line gave with the answer itself."
        )
    )
    digest: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{40}$",
        description=(
            "A large answer's SHA-1 (of its journaled text): the answer is written once, on the"
            " first line that has it, and later lines with the same answer give only this."
        ),
    )


class Divergence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program: str
    call: int = Field(description="The call's sequence number; 0 for the program's end.")
    expected: str = Field(description="The recorded answer (shortened).")
    got: str = Field(description="This run's answer (shortened), or 'no such call'.")


class ReplayCheck(BaseModel):
    """How a `replay:` run's inputs compare with the run it replays."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="The replayed run directory.")
    identical: bool = Field(description="Every program received exactly the recorded inputs.")
    compared: int = Field(description="Calls present in either run.")
    first_divergence: Divergence | None = Field(
        default=None, description="The first call, in tree order, whose answer differs."
    )
    unreadable: str | None = Field(
        default=None,
        description="Why the replayed run's recording could not be read (one line naming the "
        "file and the line); nothing was compared.",
    )


BLOB_REF = '{"blob":"'
"""How a journal entry refers to a large answer kept once, by its SHA-1 (lib.lua's
`journal_shared`)."""


def input_lines(
    journals: dict[str, dict[int, str]], blobs: dict[str, str] | None = None
) -> list[str]:
    """inputs.jsonl's lines from each program's journal (program id -> seq -> entry); an entry
    that refers to a large answer kept once (`blobs`, by SHA-1) gives it on its first line only."""
    lines = []
    written: set[str] = set()
    for program in sorted(journals, key=id_sort_key):
        for call, entry in sorted(journals[program].items()):
            digest = _blob_ref(entry)
            if digest is not None:
                first = digest not in written
                written.add(digest)
                answer = _seen((blobs or {}).get(digest, "")) if first else None
                row = ProgramInput(program=program, call=call, answer=answer, digest=digest)
                lines.append(row.model_dump_json())
                continue
            answer = _seen(entry)
            if _in_flight(answer):
                continue  # the program never received it (it ended while the call was out)
            row = ProgramInput(program=program, call=call, answer=answer)
            lines.append(row.model_dump_json())
    return lines


def _blob_ref(entry: str) -> str | None:
    if not entry.startswith(BLOB_REF):
        return None
    digest = entry[len(BLOB_REF) : len(BLOB_REF) + 40]
    return digest if entry == f'{BLOB_REF}{digest}"}}' else None


def _in_flight(answer: Any) -> bool:
    """A call still out (a model call reserved or answered but not settled, a world action
    started): not an input the program saw."""
    return isinstance(answer, dict) and answer.get("phase") in ("reserved", "answered", "started")


def compare_inputs(
    source: str, recorded: list[ProgramInput], now: list[ProgramInput]
) -> ReplayCheck:
    """Compare two runs' inputs; the first difference in tree order, then call order."""
    old, new = _answers(recorded), _answers(now)
    keys = sorted(old.keys() | new.keys(), key=lambda k: (id_sort_key(k[0]), k[1]))
    for key in keys:
        if key not in old or key not in new or old[key] != new[key]:
            return ReplayCheck(
                source=source,
                identical=False,
                compared=len(keys),
                first_divergence=Divergence(
                    program=key[0],
                    call=key[1],
                    expected=_show(old[key]) if key in old else "no such call",
                    got=_show(new[key]) if key in new else "no such call",
                ),
            )
    return ReplayCheck(source=source, identical=True, compared=len(keys))


_NO_ANSWER = "no answer: its digest is given before any line gives the answer"


def _answers(rows: list[ProgramInput]) -> dict[tuple[str, int], Any]:
    """What each call answered. A large answer given once and then by its digest is compared
    as the answer itself, never by the digest alone: nothing checks a digest against its
    answer, so a line could keep the one and change the other. A line that gives both is
    compared by its own answer."""
    by_digest: dict[str, Any] = {}
    for row in rows:
        if row.digest is not None and row.answer is not None:
            by_digest.setdefault(row.digest, row.answer)
    return {
        (r.program, r.call): r.answer
        if r.digest is None or r.answer is not None
        else by_digest.get(r.digest, _NO_ANSWER)
        for r in rows
    }


def compare_ends(check: ReplayCheck, recorded: list[Any], now: list[Any]) -> ReplayCheck:
    """`check`, made not identical when the programs' ends differ (which programs exist, their
    status, result and error) even though every compared input matched: a run is identical
    only when every program also ended the same way."""
    if not check.identical:
        return check
    old = {p.id: _end(p) for p in recorded}
    new = {p.id: _end(p) for p in now}
    for program in sorted(old.keys() | new.keys(), key=id_sort_key):
        if old.get(program) != new.get(program):
            divergence = Divergence(
                program=program,
                call=0,
                expected=_show(old[program]) if program in old else "no such program",
                got=_show(new[program]) if program in new else "no such program",
            )
            return check.model_copy(update={"identical": False, "first_divergence": divergence})
    return check


def _end(program: Any) -> dict[str, Any]:
    return {"status": program.status, "result": program.result, "error": program.error}


def _seen(entry: str) -> Any:
    """The journaled answer as the program saw it: JSON when it is, host timings left out."""
    try:
        value = json.loads(entry)
    except ValueError:
        return entry
    if isinstance(value, dict) and "phase" in value:
        value = {k: v for k, v in value.items() if k not in _MODEL_CALL_BOOKKEEPING}
    return _without_wall_time(value)


def _without_wall_time(value: Any, depth: int = 3) -> Any:
    """`value` without host timings in its top levels (a model answer holds one at depth 2)."""
    if depth and isinstance(value, dict):
        return {
            k: _without_wall_time(v, depth - 1)
            for k, v in value.items()
            if k not in _WALL_TIME_FIELDS
        }
    return value


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
