"""`swarmlab report` and `swarmlab traces`: the emergence report and Jaeger's upload JSON.

Nothing heavy loads until a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swarmlab.core import SpecError, present, write_text

from ._common import path_argument
from ._text import terminal_text

__all__ = [
    "add_report_parser",
    "add_traces_parser",
    "report_command",
    "traces_command",
    "write_run_report",
]


def add_report_parser(
    sub: Any,
) -> argparse.ArgumentParser:
    report: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="the emergence report of a run, or several runs side by side",
        description="Print a run's emergence metrics and write report.html into its directory; "
        "with several runs, print them side by side and write one comparison page.",
    )
    report.add_argument(
        "runs", nargs="+", type=path_argument, metavar="RUN", help="a run directory"
    )
    report.add_argument(
        "--out",
        type=path_argument,
        metavar="FILE",
        help="where to write the page (one run: RUN/report.html; several: ./comparison.html)",
    )
    report.add_argument(
        "--json", action="store_true", help="print the metrics as JSON instead of a table"
    )
    report.add_argument(
        "--quine-threshold",
        type=float,
        default=0.6,
        metavar="R",
        help="share (0-1] of an ancestor's code shape a program must re-create to count as "
        "its quine (default 0.6, the analysis' QUINE_THRESHOLD)",
    )
    return report


NO_SUMMARY = (
    "no summary.json (a run still going, or its summary was removed): its figures are its "
    "records' own, not checked against the run's counts"
)


def report_command(args: argparse.Namespace) -> int:
    from swarmlab.observability.analysis import analyze_run
    from swarmlab.observability.report import (
        analyze_runs,
        format_metrics_table,
        run_label,
        write_comparison,
        write_report,
    )
    from swarmlab.records import RunDir

    if not 0 < args.quine_threshold <= 1:
        raise SpecError(f"--quine-threshold {args.quine_threshold}: must be in (0, 1]")
    for run in args.runs:
        RunDir(run).require()
    unchecked = [run for run in args.runs if not present(RunDir(run).file("summary.json"))]
    if len(args.runs) == 1:  # the page and the figures from one reading of the run
        read = RunDir(args.runs[0]).records()
        only = analyze_run(args.runs[0], args.quine_threshold, read)
        metrics = {run_label(only, args.runs[0]): only}
    else:
        metrics = analyze_runs(args.runs, args.quine_threshold)
    if args.out is not None:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)  # as `traces --jaeger-json`
        except OSError as exc:
            raise SpecError(f"--out {args.out}: cannot write ({exc.strerror or exc})") from None
    try:
        if len(args.runs) == 1:
            page = write_report(args.runs[0], args.out, metrics=only, read=read)
        else:
            out = args.out or Path("comparison.html")
            page = write_comparison(args.runs, out, metrics=metrics)
    except OSError as exc:
        raise SpecError(f"{exc.filename}: cannot write ({exc.strerror or exc})") from None
    if args.json:
        data = {k: m.model_dump(mode="json") for k, m in metrics.items()}
        print(json.dumps(next(iter(data.values())) if len(data) == 1 else data, indent=1))
        print(f"report: {terminal_text(page)}", file=sys.stderr)
    else:
        # Run ids and other labels come from run directories, which anyone may have written.
        print(terminal_text(format_metrics_table(metrics), keep_newlines=True))
        print(f"\nreport: {terminal_text(page)}")
    for run in unchecked:
        print(f"swarmlab report: {terminal_text(str(run))}: {NO_SUMMARY}", file=sys.stderr)
    return 0


def write_run_report(run: Path, quine_threshold: float = 0.6) -> Path:
    """`swarmlab report RUN`'s page, written at RUN/report.html (no table printed)."""
    from swarmlab.observability.report import write_report

    return write_report(run, None, quine_threshold)


def add_traces_parser(
    sub: Any,
) -> argparse.ArgumentParser:
    traces: argparse.ArgumentParser = sub.add_parser(
        "traces",
        help="export a run's trace for Jaeger's UI",
        description="Convert RUN/traces.jsonl into the JSON that Jaeger's UI opens from its "
        "search page (JSON File / Upload JSON).",
    )
    traces.add_argument(
        "run", type=path_argument, metavar="RUN", help="a run directory or traces.jsonl"
    )
    traces.add_argument(
        "--jaeger-json",
        type=path_argument,
        required=True,
        metavar="OUT.json",
        help="where to write the Jaeger upload JSON",
    )
    return traces


def traces_command(args: argparse.Namespace) -> int:
    from swarmlab.observability.analysis import read_spans
    from swarmlab.observability.report import to_jaeger_json

    run: Path = args.run
    if not run.exists():
        raise SpecError(f"{run}: no such run directory")
    path = run / "traces.jsonl" if run.is_dir() else run
    if run.is_dir() and not present(path):
        if not present(run / "programs.jsonl"):
            raise SpecError(f"{run}: not a run directory (no programs.jsonl)")
        raise SpecError(f"{run}: no traces.jsonl (the run recorded no trace)")
    spans = read_spans(path)
    if not spans:
        raise SpecError(f"{path}: holds no spans")
    data = to_jaeger_json(spans)
    out: Path = args.jaeger_json
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text(out, json.dumps(data))
    except OSError as exc:
        raise SpecError(f"--jaeger-json {out}: cannot write ({exc.strerror or exc})") from None
    print(
        f"{out}: {len(spans)} spans in {len(data['data'])} trace(s); "
        "open it in Jaeger's UI: Search, JSON File"
    )
    return 0
