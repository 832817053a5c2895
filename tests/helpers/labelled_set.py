"""The detectors' labelled validation set: hand-written programs and small trees, run for real.

Each item of tests/data/detectors/*.yaml is a small tree of programs written by hand (never
drawn from the sim's templates), with the model's answers scripted and hand labels for every
detector (tests/data/detectors/README.md says how items were labelled). `run_item` runs the
tree in the lab's real sandbox (pydantic-monty workers): a stand-in for the runtime's capability
API records every call as an event the way the runtime does (source scan, refused imports and OS
calls, spawn provenance, denials), so the detectors see what the programs really did, not what
the labeller wrote down. Children run to their end when spawned (a run in order, one program at
a time), so kills find their targets ended and `wait` finds results ready.

`score_set` runs every item, analyses each as a run directory (`analyze_run`'s path), and
counts each detector's true and false positives against the labels.

    .venv/bin/python tests/helpers/labelled_set.py      # prints the table for docs/metrics.md
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import itertools
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from swarmlab import ProgramLimits
from swarmlab.core import (
    ALIASES,
    CAPABILITIES,
    CLOCK_KIND,
    ESCAPE_KIND,
    UNKNOWN_NAME_KIND,
    WORLD_ACTIONS,
    BadCall,
    CapExceeded,
    ProgramFault,
    UnknownCapability,
    in_lineage,
)
from swarmlab.observability.analysis import (
    CodeReader,
    Detections,
    ProgramInfo,
    detect,
    load_run_dir,
)
from swarmlab.records import Decision, Event, ProgramRecord
from swarmlab.runtime import extract_program
from swarmlab.runtime._capabilities import _KEY
from swarmlab.runtime._crash_marks import error_kind, refused_clock
from swarmlab.runtime._sandbox import NOT_HANDLED, Sandbox, clock_function, sim_datetime
from swarmlab.runtime._source_scan import escape_attempts

DATA = Path(__file__).resolve().parent.parent / "data" / "detectors"
LIMITS = ProgramLimits(cpu_s=0.3, memory_bytes=32 * 1024 * 1024, host_calls=300)
MAX_DEPTH = 3
MAX_PROGRAMS = 12
DETECTORS = (
    "meta_task",
    "quine",
    "duplicate",
    "escape",
    "control",
    "crash",
    "coordination",
    "introspection",
)
_CLOCK = {"time.time", "datetime.now", "date.today", "time.sleep", "asyncio.sleep"}


@dataclass
class Item:
    """One labelled tree: its root program, the model's answers, denials, and the labels."""

    id: str
    about: str
    code: str
    task: str = ""
    answers: dict[str, list[str]] = field(default_factory=dict)
    deny: dict[str, dict[str, str]] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # the ruling a definition needed for this item's labels, if any
    file: str = ""


def load_items(folder: Path = DATA) -> list[Item]:
    items = []
    for path in sorted(folder.rglob("*.yaml")):
        for raw in yaml.safe_load(path.read_text()) or []:
            items.append(Item(file=str(path.relative_to(folder)), **raw))
    ids = Counter(i.id for i in items)
    repeated = [i for i, n in ids.items() if n > 1]
    if repeated:
        raise ValueError(f"item ids used twice: {repeated}")
    return items


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Tree:
    """The records and events of one item's run, as the runtime would write them."""

    def __init__(self, item: Item, sandbox: Sandbox) -> None:
        self.item = item
        self.sandbox = sandbox
        self.records: dict[str, ProgramRecord] = {}
        self.events: list[Event] = []
        self.board: dict[str, tuple[Any, str]] = {}
        self.clock = itertools.count()

    def event(self, program: str, kind: str, decision: Decision, cap: str | None = None,
              detail: dict[str, Any] | None = None) -> Event:  # fmt: skip
        e = Event(t=1000 + next(self.clock) / 1000, program=program, kind=kind,
                  decision=decision, cap=cap, detail=detail or {})  # fmt: skip
        self.events.append(e)
        return e

    async def run(self, pid: str, parent: str | None, code: str, task: str) -> None:
        record = ProgramRecord(id=pid, parent_id=parent, depth=pid.count("."), task=task,
                               code=code, created_at=1000 + next(self.clock) / 1000)  # fmt: skip
        self.records[pid] = record
        self.event(pid, "start", "info", detail={"depth": record.depth})
        handler = _Handler(self, record)
        for found in escape_attempts(code):
            handler.pending.append(("info", {"source": found}))
        outcome = await self.sandbox.run(code, handler, LIMITS, script_name=f"{pid}.py")
        handler.flush()
        record.status = "completed" if outcome.status == "completed" else "crashed"
        record.result = outcome.result if _jsonable(outcome.result) else repr(outcome.result)
        record.error = outcome.error
        record.ended_at = 1000 + next(self.clock) / 1000
        detail = {"status": record.status, "error": (record.error or "")[:300]}
        if outcome.limit:
            detail["limit"] = outcome.limit
        kind = error_kind(outcome, handler.refused, code)
        if kind:
            detail["error_kind"] = kind
        clock = refused_clock(pid, outcome, code)
        if clock:  # as the runtime records a reach for the clock the sandbox refused
            self.event(pid, CLOCK_KIND, "info", detail=clock.detail)
        self.event(pid, "end", "info", detail=detail)

    def write(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        rows = [r.to_json() for r in self.records.values()]
        (out / "programs.jsonl").write_text("".join(r + "\n" for r in rows))
        (out / "events.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in self.events))
        return out


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class _Handler:
    """The capability API for one program of a labelled tree (see the module's docstring)."""

    capabilities = frozenset(ALIASES)
    world_actions = tuple(WORLD_ACTIONS)

    def __init__(self, tree: _Tree, record: ProgramRecord) -> None:
        self.tree = tree
        self.record = record
        self.pid = record.id
        self.kids: list[str] = []
        self.received: set[str] = set()
        self.answers = list(tree.item.answers.get(self.pid, []))
        self.pending: list[tuple[Decision, dict[str, Any]]] = []
        self.clocks_read: set[str] = set()
        self.raised: ProgramFault | None = None
        self.refused: str | None = None
        """As the runtime keeps them: what the lab raised or refused at the program's last
        step (for the crash mark)."""

    def flush(self) -> None:
        decision: Decision
        for decision, detail in self.pending:
            self.tree.event(self.pid, ESCAPE_KIND, decision, "sandbox", detail)
        self.pending.clear()

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.raised = self.refused = None
        try:
            return await self._call(name, args, kwargs)
        except ProgramFault as fault:
            self.raised = fault
            raise

    async def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.flush()
        name = name.removeprefix("lab.")
        bound: dict[str, Any] = {}
        if name.startswith("world."):
            if name[6:] not in WORLD_ACTIONS:
                self.tree.event(self.pid, UNKNOWN_NAME_KIND, "error", detail={"name": name})
                raise UnknownCapability(f"world has no action {name[6:]!r}")
        elif name not in ALIASES:
            self.tree.event(self.pid, UNKNOWN_NAME_KIND, "error", detail={"name": name})
            raise UnknownCapability(f"name {name!r} is not defined")
        else:  # as the runtime does, a capability's arguments bind before any cap is asked
            bound = self._bind(name, CAPABILITIES[ALIASES[name]].signature, args, kwargs)
        cap = self.tree.item.deny.get(self.pid, {}).get(name)
        if cap:
            self.tree.event(self.pid, name, "denied", cap, {"args": repr(args)[:100]})
            raise CapExceeded(cap, "limit reached")
        if name.startswith("world."):  # charged first, then bound by the world's rules
            self._bind(name, WORLD_ACTIONS[name[6:]].signature, args, kwargs)
            return self._world(name, args)
        return await self._capability(ALIASES[name], name, bound)

    def _bind(
        self, name: str, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The call's arguments by name, defaults filled in, by the API's declaration."""
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            self.tree.event(self.pid, name, "error", detail={"error": str(exc)[:300]})
            raise BadCall(f"{name}(): {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def _world(self, name: str, args: tuple[Any, ...]) -> Any:
        self.tree.event(self.pid, name, "allowed", detail={"args": repr(args)[:100]})
        return {
            "world.search_suppliers": [
                {"name": "Acme Wire", "price_per_unit": 0.011, "delivery_h": 20},
                {"name": "ClipCo", "price_per_unit": 0.009, "delivery_h": 30},
            ],
            "world.buy": {"order": "o-1", "cost": 55.0, "arrives_h": 20.0},
            "world.email": "no reply yet",
            "world.web_request": "<html><body>simulated page</body></html>",
            "world.build_machine": {"machine": "m-1", "cost": 300.0, "ready_h": 6.0},
            "world.inventory": {"money": 1000.0, "paperclips": 0, "orders": []},
        }[name]

    async def _capability(self, capability: str, name: str, bound: dict[str, Any]) -> Any:
        if capability == "run_ai":
            answer = self.answers.pop(0) if self.answers else ""  # a model with nothing to add
            fenced = (extract_program(answer) or answer) if "```" in answer else answer
            self.received |= {_digest(answer), _digest(fenced)}
            prompt = str(bound["prompt"])
            self.tree.event(self.pid, name, "allowed", detail={
                "prompt": prompt[:300], "prompt_tokens": len(prompt) // 4 + 1,
                "completion_tokens": len(answer) // 4 + 1, "answer": answer[:300]})  # fmt: skip
            return answer
        if capability == "spawn":
            if not isinstance(bound["code"], str) or not bound["code"].strip():
                raise BadCall("spawn(): code must be a non-empty string")
            return await self._spawn(bound["code"], str(bound["task"]))
        if capability == "wait":
            wanted = bound["id_or_ids"]
            ids = [wanted] if isinstance(wanted, str) else list(wanted)
            views = [self._view(i) for i in ids]
            self.tree.event(self.pid, "wait", "allowed", detail={"ids": ids[:20], "done": True})
            return views[0] if isinstance(wanted, str) else views
        if capability == "kill":
            return self._kill(str(bound["program_id"]))
        if capability in ("db_put", "db_get") and not _KEY.fullmatch(str(bound["key"])):
            self.tree.event(self.pid, name, "error", detail={"error": "bad key"})
            raise BadCall(f"{name}(): bad key {str(bound['key'])[:40]!r}")
        value = self._simple(capability, bound)
        detail: dict[str, Any] = {}
        if capability == "db_get":
            writer = self.tree.board.get(bound["key"], (None, None))[1]
            detail = {"key": bound["key"], "writer": writer}
        elif capability == "db_put":
            detail = {"key": bound["key"]}
        elif capability == "log":
            detail = {"msg": str(bound["msg"])[:200]}
        self.tree.event(self.pid, name, "info" if name == "log" else "allowed", detail=detail)
        return value

    def _simple(self, capability: str, bound: dict[str, Any]) -> Any:
        board = self.tree.board
        if capability == "db_put":
            board[str(bound["key"])] = (bound["value"], self.pid)
            return None
        if capability == "db_get":
            return board.get(str(bound["key"]), (bound["default"], None))[0]
        if capability == "db_keys":
            return sorted(k for k in board if k.startswith(str(bound["prefix"])))
        return {
            "children": list(self.kids),
            "my_id": self.pid,
            "budget": {"programs": 8, "model_calls": 40, "tokens": 20000, "world_actions": 30},
            "now": 2.5,
            "deadline": 24.0,
            "cluster_info": {"runners": 2, "nodes": ["lab-node-0"], "gpus": 0},
            "log": None,
        }[capability]

    async def _spawn(self, code: str, task: str) -> str:
        # A fenced answer runs its block; other text runs as it is. (The runtime's extraction
        # also guesses where unfenced code starts, and can drop its first lines: issue 10.)
        program = (extract_program(code) or code) if "```" in code else code
        child = f"{self.pid}.{len(self.kids) + 1}"
        if child.count(".") > MAX_DEPTH or len(self.tree.records) >= MAX_PROGRAMS:
            cap = "depth" if child.count(".") > MAX_DEPTH else "programs"
            self.tree.event(self.pid, "spawn", "denied", cap)
            raise CapExceeded(cap, "limit reached")
        if _digest(code) in self.received or _digest(program) in self.received:
            provenance = "completion"
        elif _digest(program) == _digest(self.record.code):
            provenance = "own_code"
        else:
            provenance = "built"
        self.kids.append(child)
        self.tree.event(self.pid, "spawn", "allowed", detail={
            "child": child, "task": task[:200], "code_sha256": _digest(program),
            "provenance": provenance})  # fmt: skip
        await self.tree.run(child, self.pid, program, task[:500])
        return child

    def _view(self, pid: str) -> dict[str, Any]:
        r = self.tree.records.get(pid)
        if r is None:
            return {"id": pid, "status": "unknown", "result": None, "error": "no such program"}
        return {"id": r.id, "status": r.status, "result": r.result, "error": r.error}

    def _kill(self, target: str) -> bool:
        own = in_lineage(target, self.pid)
        detail: dict[str, Any] = {"target": target, "own_lineage": own, "policy": "allow"}
        if target == self.pid or in_lineage(self.pid, target):
            self.tree.event(self.pid, "kill", "denied", "kill_policy", detail)
            return False
        self.tree.event(self.pid, "kill", "allowed", detail=detail | {"stopped": 0})
        return False

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        self.raised = self.refused = None
        clock_read = clock_function(name, args)
        if clock_read and clock_read not in self.clocks_read:  # recorded as the runtime does
            self.clocks_read.add(clock_read)
            self.tree.event(self.pid, CLOCK_KIND, "info", detail={"clock": clock_read})
        if name in _CLOCK:  # the simulated clock, as the runtime answers it
            now = sim_datetime(2.5)
            clock = {"time.time": now.timestamp(), "datetime.now": now.replace(tzinfo=None)}
            return clock.get(name, now.date() if name == "date.today" else None)
        self.flush()
        self.tree.event(self.pid, ESCAPE_KIND, "denied", "sandbox", {"os_call": name})
        self.refused = f"os_call {name}"
        return NOT_HANDLED

    def on_import(self, module: str) -> None:
        self.raised = self.refused = None
        if module not in ("lab", "world"):
            self.refused = f"import {module}"
            self.pending.append(("denied", {"import": module[:200]}))


async def _run_items(items: list[Item], out: Path) -> dict[str, Path]:
    sandbox = Sandbox(max_workers=MAX_DEPTH + 2)
    await sandbox.start()
    try:
        dirs = {}
        for item in items:
            tree = _Tree(item, sandbox)
            await tree.run("p0", None, item.code, item.task)
            dirs[item.id] = tree.write(out / item.id)
        return dirs
    finally:
        await sandbox.close()


def run_items(items: list[Item], out: Path) -> dict[str, Path]:
    """Run each item's tree in the sandbox; its run directory (programs.jsonl, events.jsonl)."""
    return asyncio.run(_run_items(items, out))


@dataclass
class Score:
    """One detector's agreement with the labels."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    positives: int = 0
    considered: int = 0
    """Programs (or pairs) the detector judged: its share of the set."""
    misses: list[str] = field(default_factory=list)

    def __add__(self, other: Score) -> Score:
        return Score(
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
            self.positives + other.positives,
            self.considered + other.considered,
            self.misses + other.misses,
        )

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def found_sets(found: Detections) -> dict[str, set[Any]]:
    """What the detectors found, as the units the labels use."""
    return {
        "meta_task": set(found.meta_tasks),
        "quine": set(found.quines or {}),
        "duplicate": {p for group in found.duplicate_groups or [] for p in group},
        "escape": {(p, r) for p, resources in found.escapes.items() for r in resources},
        "control": set(found.control_pairs),
        "crash": set(found.crash_causes.items()),
        "coordination": set(found.cross_lineage_pairs),
        "introspection": set(found.introspecting),
    }


def label_sets(item: Item) -> dict[str, set[Any]]:
    """The hand labels of an item, as sets of the same units."""
    labels = item.labels
    unknown = set(labels) - set(DETECTORS)
    if unknown:
        raise ValueError(f"{item.id}: unknown labels {sorted(unknown)}")
    return {
        "meta_task": set(labels.get("meta_task", [])),
        "quine": set(labels.get("quine", [])),
        "duplicate": {p for group in labels.get("duplicate", []) for p in group},
        "escape": {(p, r) for p, resources in labels.get("escape", {}).items() for r in resources},
        "control": {tuple(pair) for pair in labels.get("control", [])},
        "crash": set(labels.get("crash", {}).items()),
        "coordination": {tuple(pair) for pair in labels.get("coordination", [])},
        "introspection": set(labels.get("introspection", [])),
    }


def _considered(detector: str, programs: list[ProgramInfo]) -> int:
    if detector in ("meta_task", "quine"):
        return sum(1 for p in programs if p.parent_id is not None)
    if detector == "crash":
        return sum(1 for p in programs if p.status == "crashed")
    return len(programs)


def score_set(items: list[Item], out: Path) -> dict[str, Score]:
    """Run and analyse every item; each detector's counts against the labels."""
    scores = {d: Score() for d in DETECTORS} | {f"crash:{c}": Score() for c in _CAUSES}
    reader = CodeReader()
    for item, run_dir in zip(items, run_items(items, out).values(), strict=True):
        data = load_run_dir(run_dir)
        ids = {p.id for p in data.programs}
        want = label_sets(item)
        _check_ids(item, want, ids)
        got = found_sets(detect(data, reader=reader))
        for detector in DETECTORS:
            _count(scores[detector], item.id, want[detector], got[detector])
            scores[detector].considered += _considered(detector, data.programs)
        for cause in _CAUSES:
            pick = {pair for pair in want["crash"] if pair[1] == cause}
            _count(scores[f"crash:{cause}"], item.id, pick,
                   {pair for pair in got["crash"] if pair[1] == cause})  # fmt: skip
    return scores


_CAUSES = ("code_fault", "unsupported", "denied", "limit")


def _check_ids(item: Item, want: dict[str, set[Any]], ids: set[str]) -> None:
    for detector, units in want.items():
        for unit in units:
            named = [unit] if isinstance(unit, str) else [u for u in unit if u.startswith("p0")]
            missing = [pid for pid in named if pid not in ids]
            if missing:
                raise ValueError(f"{item.id}: {detector} label names {missing}, not in the run")


def _count(score: Score, item: str, want: set[Any], got: set[Any]) -> None:
    score.tp += len(want & got)
    score.fp += len(got - want)
    score.fn += len(want - got)
    score.positives += len(want)
    score.misses += [f"{item}: false {unit}" for unit in sorted(got - want, key=str)]
    score.misses += [f"{item}: missed {unit}" for unit in sorted(want - got, key=str)]


def table(scores: dict[str, Score]) -> str:
    """The markdown table docs/metrics.md shows."""
    lines = [
        "| detector | labelled positives | judged | TP | FP | FN | precision | recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in scores.items():
        lines.append(
            f"| {name} | {s.positives} | {s.considered or '-'} | {s.tp} | {s.fp} | {s.fn} "
            f"| {s.precision:.2f} | {s.recall:.2f} |"
        )
    return "\n".join(lines)


PARTS = ("heldout", "fresh", "dev")
"""The set's parts: held out, written after the quine detector's normal form, development."""


def score_parts(out: Path) -> dict[str, dict[str, Score]]:
    """Scores of each part of the set and of the whole set (their sum)."""
    parts = {part: score_set(load_items(DATA / part), out / part) for part in PARTS}
    whole = {
        name: parts["heldout"][name] + parts["fresh"][name] + parts["dev"][name]
        for name in parts["dev"]
    }
    return parts | {"whole": whole}


def tables(scores: dict[str, dict[str, Score]]) -> str:
    """The tables of docs/metrics.md, each under a heading naming its part of the set."""
    parts = []
    for part, title in (("heldout", "Held-out half"), ("fresh", "Fresh part"),
                        ("dev", "Development half"), ("whole", "Whole set")):  # fmt: skip
        trees = len(load_items(DATA / part)) if part != "whole" else len(load_items())
        programs = scores[part]["duplicate"].considered
        parts.append(f"#### {title}: {trees} trees, {programs} programs\n\n{table(scores[part])}")
    return "\n\n".join(parts)


def main() -> None:
    """Print the tables for docs/metrics.md; every miss goes to stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        scores = score_parts(Path(tmp))
    print(tables(scores))
    for name, score in scores["whole"].items():
        for miss in score.misses:
            print(f"{name}: {miss}", file=sys.stderr)


if __name__ == "__main__":
    main()
