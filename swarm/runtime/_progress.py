"""What a run reports while it goes: the driver calls a `ProgressSink`; the command line
supplies one that draws (swarmlab.cli), library callers may pass their own or none."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from swarmlab.records import RunResult
from swarmlab.spec import ExperimentSpec

BAR_CAPS = ("programs", "concurrent", "model_calls", "tokens", "world_actions", "blackboard_bytes")


@dataclass
class Snapshot:
    elapsed_s: float
    counts: dict[str, int] = field(default_factory=dict)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    """Live programs by what they do: computing, parked, waiting (for a worker), calling."""
    admission: str = "deny"
    """The spec's admission: under `queue`, `concurrent` bounds the programs computing at once
    (spawns over it wait), so its bar shows those, as summary.json's `concurrent.used` does."""
    runners: tuple[int, int] | None = None
    """Runners serving, and runners the run has (None: not known)."""
    runnerless_s: float | None = None
    """For how long no runner has served (None while one serves)."""
    runnerless_limit_s: float = 0.0
    """How long the run waits for a runner before it fails."""

    @property
    def denied(self) -> int:
        return int(sum(u.get("denied", 0) for u in self.usage.values()))

    def used(self, cap: str) -> float:
        """What a cap's bar shows as used (its limit and denials are in `usage`)."""
        if cap == "concurrent" and self.admission == "queue":
            return float(self.states.get("computing", 0))
        return float(self.usage.get(cap, {}).get("used", 0))

    def line(self) -> str:
        u = self.usage
        live = int(u.get("live", {}).get("used", 0))
        c = self.counts
        caps = " ".join(
            f"{cap}={int(self.used(cap))}/{int(u[cap]['limit'])}" for cap in BAR_CAPS if cap in u
        )
        st = self.states
        return (
            f"[{self.elapsed_s:6.1f}s] running={live} computing={st.get('computing', 0)} "
            f"parked={st.get('parked', 0) + st.get('calling', 0)} done={c.get('completed', 0)} "
            f"crashed={c.get('crashed', 0)} killed={c.get('killed', 0)} denied={self.denied} "
            f"depth={int(u.get('depth', {}).get('used', 0))} {caps}{self._runners()}"
        )

    def _runners(self) -> str:
        """Shown when a runner is missing; with no runner, how long the run has waited."""
        if self.runners is None or self.runners[0] >= self.runners[1]:
            return ""
        text = f" runners={self.runners[0]}/{self.runners[1]}"
        if self.runnerless_s is not None:
            text += (
                f" NO RUNNER for {self.runnerless_s:.0f}s (fails at {self.runnerless_limit_s:g}s)"
            )
        return text


class ProgressSink(Protocol):
    """Where a run's progress goes."""

    def note(self, text: str) -> None:
        """One line about what the run is doing (starting Ray, the model server, ...)."""

    def start(self, run_id: str, spec: ExperimentSpec, out: Path) -> None:
        """The tree starts growing."""

    def update(self, snap: Snapshot) -> None:
        """Counts and cap usage, a few times a second while the tree grows."""

    def finish(self, result: RunResult) -> None:
        """The run directory is written."""


class _Silent:
    def note(self, text: str) -> None:
        pass

    def start(self, run_id: str, spec: ExperimentSpec, out: Path) -> None:
        pass

    def update(self, snap: Snapshot) -> None:
        pass

    def finish(self, result: RunResult) -> None:
        pass


def silent() -> ProgressSink:
    """A sink that shows nothing."""
    return _Silent()
