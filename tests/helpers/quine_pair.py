"""The quine detector on the smallest tree: a root and its one child."""

from __future__ import annotations

from swarmlab.observability.analysis import RunData
from swarmlab.observability.analysis._data import ProgramInfo
from swarmlab.observability.analysis._detectors import RunView, quines


def recreates(ancestor: str, child: str) -> bool:
    """Whether the detector calls `child` (spawned by `ancestor`) a re-creation of it."""
    programs = [
        ProgramInfo("p0", None, 0, "", ancestor, "completed", 1.0),
        ProgramInfo("p0.1", "p0", 1, "", child, "completed", 2.0),
    ]
    data = RunData(source="t", run_id="t", scaffold=True, programs=programs, calls=[],
                   outcome={})  # fmt: skip
    return "p0.1" in quines(RunView(data))
