"""The run directory: summary.json, programs.jsonl, events.jsonl and the rest.

The layout and the fields of summary.json and programs.jsonl are a contract that researchers'
scripts rely on: extend it, never rename.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ._records import Event, ProgramRecord
from ._scenario import RootDialogue
from ._spec import ExperimentSpec

RunStatus = Literal["completed", "killed", "halted", "failed"]
PER_PROGRAM_LIMITS = ("cpu_s", "memory_bytes", "host_calls", "blackboard_value_bytes")


@dataclass
class RunResult:
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
    """Every model call of the run (request and answer), for `replay:` (models/_replay.py)."""

    @property
    def duration_s(self) -> float:
        return round(self.ended_at - self.started_at, 3)

    def caps(self) -> dict[str, dict[str, float]]:
        """Each global cap's limit, used and denied (concurrent: the peak; depth: the deepest)."""
        out = {}
        for cap, limit in self.spec.caps.model_dump().items():
            u = self.usage.get(cap, {})
            used = self.duration_s if cap == "wall_clock_s" else u.get("used", 0.0)
            out[cap] = {
                "limit": limit,
                "used": _num(min(used, limit) if cap == "wall_clock_s" else used),
                "denied": int(u.get("denied", 0)),
            }
        return out

    def summary(self) -> dict[str, Any]:
        by_status = Counter(p.status for p in self.programs)
        children = Counter(p.parent_id for p in self.programs if p.parent_id)
        limits = self.spec.program_limits.model_dump()
        return {
            "run_id": self.run_id,
            "trace_id": self.trace_id,
            "status": self.status,
            "ended_because": self.ended_because,
            "model": {"backend": self.spec.model.split(":", 1)[0], "name": self._model_name()},
            "programs": {"total": len(self.programs), "by_status": dict(sorted(by_status.items()))},
            "tree": {
                "size": len(self.programs),
                "max_depth": max((p.depth for p in self.programs), default=0),
                "branching": round(sum(children.values()) / len(children), 3) if children else 0.0,
                "root": "file" if self.root_from_file else "dialogue",
            },
            "scaffold": self.root_from_file or bool(self.dialogue and self.dialogue.program),
            "caps": self.caps(),
            "program_limits": {
                name: {
                    "limit": limits[name],
                    "denied": int(self.usage.get(name, {}).get("denied", 0)),
                }
                for name in PER_PROGRAM_LIMITS
            },
            "outcome": self.outcome,
            "events": len(self.events),
            "duration_s": self.duration_s,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "spec": self.spec.model_dump(),
        }

    def _model_name(self) -> str:
        for line in self.completions[:1]:
            return str(json.loads(line)["completion"]["model"])
        for event in self.events:
            name = event.detail.get("model") if event.kind == "run_ai" else None
            if name:
                return str(name)
        return self.spec.model_name or self.spec.model


def write_run_dir(result: RunResult) -> Path:
    """Write every file of the run; each file appears whole or not at all."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "programs.jsonl", "".join(p.to_json() + "\n" for p in result.programs))
    _write(out / "events.jsonl", "".join(e.model_dump_json() + "\n" for e in result.events))
    _write(out / "blackboard.json", json.dumps(result.blackboard, indent=1, default=str))
    _write(out / "spec.yaml", yaml.safe_dump(result.spec.model_dump(), sort_keys=False))
    _write(out / "traces.jsonl", "".join(line + "\n" for line in result.spans))
    _write(out / "metrics.jsonl", "".join(line + "\n" for line in result.metrics))
    _write(out / "completions.jsonl", "".join(line + "\n" for line in result.completions))
    if result.dialogue is not None:
        _write(out / "dialogue.json", result.dialogue.model_dump_json(indent=1))
    _write(out / "summary.json", json.dumps(result.summary(), indent=1, default=str))
    return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 3)
