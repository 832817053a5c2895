"""A run's state as the driver keeps it: what the watch and the end of a run read and set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmlab.records import RootDialogue
from swarmlab.spec import ExperimentSpec

from ._mirror import Mirror
from ._progress import ProgressSink

if TYPE_CHECKING:
    from swarmlab.observability.telemetry import SwarmInstruments, Telemetry


class RunState:
    """What one run is and how it stands."""

    spec: ExperimentSpec
    run_id: str
    out: Path
    started: float
    status: str
    ended_because: str
    progress: ProgressSink
    mirror: Mirror | None
    stopped_at: float | None
    """When the driver saw the run stop (killed, halted): programs still live end then."""
    tree_started: float | None
    """When the root program was admitted: the wall clock counts from here (None: no tree)."""
    dialogue: RootDialogue | None
    root_from_file: bool
    telemetry: Telemetry | None
    instruments: SwarmInstruments
    """Set with `telemetry` (read only when it is not None)."""
    workflow: Any
    runners_lost: int
    """Runner processes that died during the run (each restarted, its programs resumed)."""
    recovered: bool = False
    """Its driver died and its watchdog writes its record from Redis (`_recover.py`)."""
    usage_seen: dict[str, Any] | None = None
    """The caps' use as the watch last read it: the summary's, when Redis is gone at the end
    (the record then says what was last seen, never that nothing was used)."""
    runners_flushed: bool = False
    """Every runner pushed out its spans and metrics after the run stopped: the pool may close
    while the record is read."""
