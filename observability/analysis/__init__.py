"""The emergence analysis: what a run's tree of programs did, as numbers with definitions.

It reads only the run's records (a run directory or a traces.jsonl), never the runtime. The
detectors judge programs by what they did (their calls and code), never by the task a program
was given; docs/metrics.md gives each one's precision and recall on hand-labelled programs.
"""

from ._code import CodeFacts, CodeReader, read_code
from ._data import Call, ProgramInfo, RunData, load_run_dir
from ._detectors import CRASH_CAUSES, QUINE_THRESHOLD, RESOURCES, Quine
from ._metrics import Detections, analyze_run, analyze_trace, compute_metrics, detect
from ._model import EmergenceMetrics
from ._traces import load_trace, read_spans, run_data_from_spans
from ._validity import BLIND, BLIND_SET, VALIDITY_FLOOR, Validity, validity_of

__all__ = [
    "BLIND",
    "BLIND_SET",
    "CRASH_CAUSES",
    "QUINE_THRESHOLD",
    "RESOURCES",
    "VALIDITY_FLOOR",
    "Call",
    "CodeFacts",
    "CodeReader",
    "Detections",
    "EmergenceMetrics",
    "ProgramInfo",
    "Quine",
    "RunData",
    "Validity",
    "analyze_run",
    "analyze_trace",
    "compute_metrics",
    "detect",
    "load_run_dir",
    "load_trace",
    "read_code",
    "read_spans",
    "run_data_from_spans",
    "validity_of",
]
