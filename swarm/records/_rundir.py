"""The run directory: one class writes it and reads it back.

| file | holds |
|---|---|
| summary.json | `RunSummary` |
| programs.jsonl | one `ProgramRecord` a line |
| events.jsonl | one `Event` a line |
| traces.jsonl, metrics.jsonl | the run's spans and metric snapshots (docs/traces.md) |
| completions.jsonl | every model call, request and answer (for `replay:`) |
| inputs.jsonl | every answer a program's call received, by program and call (`ProgramInput`) |
| blackboard.json, dialogue.json, spec.yaml | the shared database, the root dialogue, the spec |

The layout and the fields of summary.json and programs.jsonl are a contract that researchers'
scripts rely on: extend it, never rename.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from swarmlab.core import (
    EVENT_KINDS,
    MAX_TEXT_BYTES,
    UNKNOWN_NAME_KIND,
    SpecError,
    id_sort_key,
    json_lines,
    present,
    read_json,
    write_text,
)
from swarmlab.spec import TELEMETRY_CAP, ExperimentSpec

from . import _figures as figures
from ._dialogue import RootDialogue
from ._event import Event
from ._inputs import INPUTS_FILE, ProgramInput, ReplayCheck
from ._program import ProgramRecord
from ._read_back import (
    duplicate_problem,
    event_problem,
    figures_problem,
    input_problem,
    program_problem,
    tree_problem,
    whole_problem,
)
from ._summary import (
    CapUsage,
    LimitUsage,
    ModelInfo,
    ProgramCounts,
    RunStatus,
    RunSummary,
    TreeStats,
)

PER_PROGRAM_LIMITS = ("cpu_s", "memory_bytes", "host_calls", "blackboard_value_bytes")
T = TypeVar("T", bound=BaseModel)


@dataclass
class RunResult:
    """Everything a run produced, in memory; `RunDir.write` puts it on disk."""

    run_id: str
    out_dir: Path
    spec: ExperimentSpec
    status: RunStatus
    ended_because: str
    started_at: float
    ended_at: float
    usage: dict[str, dict[str, float]]
    programs: list[ProgramRecord]
    events: list[Event]
    blackboard: dict[str, Any]
    outcome: dict[str, Any]
    dialogue: RootDialogue | None
    root_from_file: bool = False
    trace_id: str | None = None
    spans: list[str] = field(default_factory=list)
    """The run's spans, one JSON object a line (docs/traces.md)."""
    metrics: list[str] = field(default_factory=list)
    completions: list[str] = field(default_factory=list)
    """Every model call of the run (request and answer), for `replay:`."""
    inputs: list[str] = field(default_factory=list)
    """Every answer a program's call received (`ProgramInput` JSON lines)."""
    replay: ReplayCheck | None = None
    """For a `replay:` run: how its inputs compare with the replayed run's."""
    runners_lost: int = 0
    recovered: bool = False
    """Written by the run's watchdog after its driver died (`RunSummary.recovered`)."""
    tree_started_at: float | None = None
    """When the root program started: the wall clock counts from here."""
    usage_last_seen: bool = False
    """`usage` is the caps' use as the run's watch last read it (Redis was gone at the end),
    not what Redis held at the end (`RunSummary.caps_last_seen`)."""

    @property
    def duration_s(self) -> float:
        return round(self.ended_at - self.started_at, 3)

    @property
    def startup_s(self) -> float | None:
        if self.tree_started_at is None:
            return None
        return round(self.tree_started_at - self.started_at, 3)

    @property
    def tree_s(self) -> float:
        """Seconds the tree ran: what the wall clock counts."""
        return round(self.ended_at - (self.tree_started_at or self.started_at), 3)

    def caps(self) -> dict[str, CapUsage]:
        """Each global cap's limit, used and denied: `used` is what happened, overruns included
        (concurrent: the peak of programs computing at once, or of live programs when spawns
        over it are denied; depth: the deepest; wall_clock_s: the time since the root program
        started)."""
        out = {}
        for cap, limit in self.spec.caps.model_dump().items():
            u = self.usage.get(cap, {})
            used = u.get("used", 0.0)
            if cap == "wall_clock_s":
                used = self.tree_s
            elif cap == "concurrent" and self.spec.admission == "queue":
                used = self.usage.get("computing_peak", {}).get("used", 0.0)
            out[cap] = CapUsage(limit=limit, used=_num(used), denied=int(u.get("denied", 0)))
        kept = self.usage.get(TELEMETRY_CAP)
        if kept:  # telemetry kept in Redis for this directory: lines past it were dropped
            out[TELEMETRY_CAP] = CapUsage(
                limit=_num(kept.get("limit", 0)),
                used=_num(kept.get("used", 0)),
                denied=int(kept.get("denied", 0)),
            )
        return out

    def summary(self) -> RunSummary:
        limits = self.spec.program_limits.model_dump()
        return RunSummary(
            run_id=self.run_id,
            trace_id=self.trace_id,
            status=self.status,
            ended_because=self.ended_because,
            model=ModelInfo(
                backend=self.spec.model.split(":", 1)[0],
                name=self._model_name(),
                failed_calls=figures.failed_model_calls(self.events),
                resent_calls=figures.resent_model_calls(self.events),
            ),
            programs=ProgramCounts(
                total=len(self.programs), by_status=figures.by_status(self.programs)
            ),
            tree=TreeStats(
                size=len(self.programs),
                max_depth=figures.max_depth(self.programs),
                branching=figures.branching(self.programs),
                root="file" if self.root_from_file else "dialogue",
            ),
            scaffold=self.root_from_file or bool(self.dialogue and self.dialogue.program),
            caps=self.caps(),
            caps_last_seen=self.usage_last_seen,
            program_limits={
                name: LimitUsage(
                    limit=limits[name], denied=int(self.usage.get(name, {}).get("denied", 0))
                )
                for name in PER_PROGRAM_LIMITS
            },
            outcome=self.outcome,
            events=len(self.events),
            duration_s=self.duration_s,
            startup_s=self.startup_s,
            started_at=self.started_at,
            ended_at=self.ended_at,
            spec=self.spec,
            replay=self.replay,
            runners_lost=self.runners_lost,
            recovered=self.recovered,
            programs_restarted=figures.programs_restarted(self.events),
        )

    def _model_name(self) -> str:
        for line in self.completions[:1]:
            return str(json.loads(line)["completion"]["model"])
        for event in self.events:
            name = event.detail.get("model") if event.kind == "run_ai" else None
            if name:
                return str(name)
        return self.spec.model_name or self.spec.model


@dataclass(frozen=True)
class RunRecords:
    """What a run directory records of its tree, read once and checked whole: the analysis and
    the report page both work from one reading, so they see the same files."""

    summary: RunSummary | None
    dialogue: RootDialogue | None
    programs: list[ProgramRecord]
    events: list[Event]


class RunDir:
    """A run directory on disk: `write(result)` creates it; the other methods read it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def file(self, name: str) -> Path:
        return self.path / name

    # --- writing ---------------------------------------------------------------------------

    WRITES = (
        "programs.jsonl",
        "events.jsonl",
        "blackboard.json",
        "spec.yaml",
        "traces.jsonl",
        "metrics.jsonl",
        "completions.jsonl",
        INPUTS_FILE,
        "dialogue.json",
        "report.html",
        "summary.json",
    )
    """The files `write` writes or removes, by name."""

    def check_writable(self) -> None:
        """`SpecError` when something that is not a file (a FIFO, a device, a socket, a
        directory) stands where the run's record will be written: found before the run starts,
        not when its record is written at the end."""
        for name in self.WRITES:
            path = self.file(name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                raise SpecError(
                    f"run directory {self.path}: {name} there is not a file; remove it or "
                    "name a new directory with --out"
                )

    def write(self, result: RunResult) -> Path:
        """Write every file of the run; each file appears whole or not at all."""
        out = self.path
        out.mkdir(parents=True, exist_ok=True)
        _write(out / "programs.jsonl", "".join(p.to_json() + "\n" for p in result.programs))
        _write(out / "events.jsonl", "".join(e.model_dump_json() + "\n" for e in result.events))
        _write(out / "blackboard.json", _one_key_a_line(result.blackboard))
        _write(out / "spec.yaml", yaml.safe_dump(result.spec.model_dump(), sort_keys=False))
        _write(out / "traces.jsonl", "".join(line + "\n" for line in result.spans))
        _write(out / "metrics.jsonl", "".join(line + "\n" for line in result.metrics))
        _write(out / "completions.jsonl", "".join(line + "\n" for line in result.completions))
        _write(out / INPUTS_FILE, "".join(line + "\n" for line in result.inputs))
        # An interrupted run here may have left files this run does not write: not this run's.
        if result.dialogue is not None:
            _write(out / "dialogue.json", result.dialogue.model_dump_json(indent=1))
        else:
            (out / "dialogue.json").unlink(missing_ok=True)
        (out / "report.html").unlink(missing_ok=True)  # rendered later, from this record
        _write(out / "summary.json", result.summary().to_json())
        return out

    # --- reading ---------------------------------------------------------------------------

    def require(self) -> RunDir:
        """This directory, if it is a run directory; else `SpecError` saying what is wrong."""
        if not self.path.exists():
            raise SpecError(f"{self.path}: no such run directory")
        if not self.path.is_dir() or not present(self.file("programs.jsonl")):
            raise SpecError(f"{self.path}: not a run directory (no programs.jsonl)")
        return self

    def records(self) -> RunRecords:
        """summary.json, dialogue.json, programs.jsonl and events.jsonl, each read once; a
        directory whose files do not hold what summary.json counts is refused."""
        summary, dialogue = self.summary(), self.dialogue()
        counted = (summary.programs.total, summary.events) if summary is not None else (None, None)
        programs, events = self.programs(most=counted[0]), self.events(most=counted[1])
        if summary is not None and (
            problem := whole_problem(summary, programs, events, dialogue is not None)
        ):
            raise SpecError(
                f"{self.path}: {problem} (the run directory is incomplete or was edited)"
            )
        if problem := tree_problem(programs, events):
            raise SpecError(f"{self.path}: {problem} (the run directory was edited)")
        if summary is not None and (problem := figures_problem(summary, programs, events)):
            raise SpecError(
                f"{self.file('summary.json')}: {problem} (the run directory was edited)"
            )
        return RunRecords(summary, dialogue, programs, events)

    def summary(self) -> RunSummary | None:
        """summary.json, or None when the run wrote none."""
        path = self.file("summary.json")
        if not present(path):
            return None
        data = read_json(path)
        try:
            return RunSummary.model_validate(data)
        except ValidationError as exc:
            raise SpecError(f"{path}: not a run summary ({_first_line(exc)})") from None

    def planned_summary(self, spec: ExperimentSpec, run_id: str = "") -> RunSummary | None:
        """summary.json of the run a sweep or a trials set planned here (None when none ran),
        refused when it is another run's: a cell or a trial copied or linked over another
        was counted as a run of this one's seed and condition."""
        summary = self.summary()
        if summary is None:
            return None
        if summary.spec != spec or (run_id and summary.run_id != run_id):
            ran, planned = summary.spec.model_dump(), spec.model_dump()
            differs = [k for k in planned if ran.get(k) != planned[k]] or ["run_id"]
            raise SpecError(
                f"{self.file('summary.json')}: not the run planned here (its {differs[0]} is "
                "another); move the directory away to run it again"
            )
        return summary

    def programs(self, most: int | None = None) -> list[ProgramRecord]:
        """programs.jsonl in tree order, each record one the runtime writes (`_read_back`); a
        file of more than `most` records is refused at the first past it (`records`: what
        summary.json counts), before the rest is read."""
        seen: set[str] = set()

        def problem(record: ProgramRecord) -> str | None:
            return program_problem(record) or duplicate_problem(seen, record)

        records = _read_rows(self.file("programs.jsonl"), ProgramRecord, check=problem, most=most)
        return sorted(records, key=lambda r: id_sort_key(r.id))

    def events(self, most: int | None = None) -> list[Event]:
        """events.jsonl in time order, each event one the runtime writes (`_read_back`); at
        most `most` of them, as `programs`."""
        rows = _read_rows(
            self.file("events.jsonl"), Event, _event_row, check=event_problem, most=most
        )
        return sorted(rows, key=lambda e: e.t)

    def dialogue(self) -> RootDialogue | None:
        """dialogue.json, or None when the root program did not come from a dialogue."""
        data = self.json("dialogue.json")
        if data is None:
            return None
        try:
            return RootDialogue.model_validate(data)
        except ValidationError as exc:
            raise SpecError(f"{self.file('dialogue.json')}: {_first_line(exc)}") from None

    def completions(self) -> list[dict[str, Any]]:
        """completions.jsonl, one model call a line, as written."""
        return [row for _, row in _json_lines(self.file("completions.jsonl"))]

    def inputs(self) -> list[ProgramInput]:
        """inputs.jsonl in tree order (empty for runs that recorded none), each call's answer
        once (`_read_back`)."""
        seen: set[tuple[str, int]] = set()
        return _read_rows(
            self.file(INPUTS_FILE), ProgramInput, check=lambda row: input_problem(seen, row)
        )

    def failure(self) -> str | None:
        """Why a sweep cell or a trial failed before its run wrote a record (failed.json's
        `error`), None when it did not."""
        path = self.file("failed.json")
        if not (path.exists() or path.is_symlink()):
            return None
        data = read_json(path, max_bytes=MAX_TEXT_BYTES)
        error = data.get("error") if isinstance(data, dict) else None
        return str(error)[:500] if error is not None else f"{path}: holds no error"

    def json(self, name: str) -> Any:
        """A JSON file of the run, None when absent."""
        path = self.file(name)
        if not present(path):
            return None
        return read_json(path)


def _event_row(row: dict[str, Any]) -> dict[str, Any]:
    """Events of older versions recorded calls to unknown names under the name itself."""
    kind = row.get("kind")
    if isinstance(kind, str) and kind not in EVENT_KINDS:
        detail = dict(row.get("detail") or {})
        detail.setdefault("name", kind[:200])
        return {**row, "kind": UNKNOWN_NAME_KIND, "detail": detail}
    return row


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """A record file's JSON lines with their numbers (none when the file is absent)."""
    if path.exists() or path.is_symlink():
        yield from json_lines(path)


def _read_rows(
    path: Path,
    model: type[T],
    adapt: Any = None,
    check: Callable[[T], str | None] | None = None,
    most: int | None = None,
) -> list[T]:
    """A JSONL file of records; fields this version does not know are ignored; `check` says
    why a record is not one the lab writes; past `most` records, the file is refused."""
    fields = model.model_fields
    rows: list[T] = []
    for number, row in _json_lines(path):
        if most is not None and len(rows) >= most:
            raise SpecError(
                f"{path}:{number}: more records than summary.json counts ({most}): the run "
                "directory was edited"
            )
        if not isinstance(row, dict):
            raise SpecError(f"{path}:{number}: not {_a(model.__name__)} (not an object)")
        try:
            if adapt is not None:
                row = adapt(row)
            record = model.model_validate({k: v for k, v in row.items() if k in fields})
        except (ValueError, AttributeError, TypeError) as exc:
            raise SpecError(
                f"{path}:{number}: not {_a(model.__name__)} ({_first_line(exc)})"
            ) from None
        if check is not None and (problem := check(record)) is not None:
            raise SpecError(f"{path}:{number}: not {_a(model.__name__)} ({problem})")
        rows.append(record)
    return rows


def _one_key_a_line(board: dict[str, Any]) -> str:
    """A JSON object with each key on a line of its own and its value compact: indenting the
    values made a value nested 190 deep take 66 times its size."""
    if not board:
        return "{}"
    lines = (f" {json.dumps(k)}: {json.dumps(v, default=str)}" for k, v in board.items())
    return "{\n" + ",\n".join(lines) + "\n}"


def _write(path: Path, text: str) -> None:
    write_text(path, text)  # whole or not at all, never through a symlink


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 3)


def _a(name: str) -> str:
    return f"an {name}" if name[:1] in "AEIOU" else f"a {name}"


def _first_line(exc: BaseException) -> str:
    """One line on what is wrong: a validation error's first field and why, else the first line."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"[:300] if where else str(first["msg"])[:300]
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
