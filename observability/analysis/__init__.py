"""The emergence analysis: what a run's tree of programs did, as numbers with definitions.

It reads only the run's records (a run directory or a traces.jsonl), never the runtime.
"""

from ._data import Call, ProgramInfo, RunData, load_run_dir
from ._detectors import META_TASK_PATTERNS, is_meta_task
from ._metrics import EmergenceMetrics, analyze_run, analyze_trace, compute_metrics
from ._traces import load_trace, read_spans, run_data_from_spans

__all__ = [
    "META_TASK_PATTERNS",
    "Call",
    "EmergenceMetrics",
    "ProgramInfo",
    "RunData",
    "analyze_run",
    "analyze_trace",
    "compute_metrics",
    "is_meta_task",
    "load_run_dir",
    "load_trace",
    "read_spans",
    "run_data_from_spans",
]
