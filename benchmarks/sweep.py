"""Sweeps: runs per minute and the time split (start-up, trees, analysis), shared vs the way before.

    .venv/bin/python benchmarks/sweep.py [--cells-seeds 3] [--programs 20] [--rounds 1]

Both conditions run the same small grid (2 affordances x N seeds, 2 cells at a time), each sweep
on its own local Ray and private redis-server as `swarmlab sweep` starts them, alternating
(before, shared, ...) so drift on a noisy machine hits both. "before": each cell creates its own
runner actors and every cell is analysed after the last tree; "shared": the cells borrow one
pool of runners (one set per cell running at once) and each finished cell is analysed in a
thread while the next ones run. Start-up is the sweep's own (Redis, Ray, creating the shared
runners); trees is from the first cell's start to the last cell's end; analysis is what is left
after the trees (results, plots, pages, waiting for the analysis thread).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from swarmlab.cli._progress import Progress
from swarmlab.experiments import SweepRunner

GRID = """
name: bench-sweep
base: paperclips
set:
  caps.programs: {programs}
  caps.depth: 2
grid:
  affordance: [none, api]
seeds: {seeds}
parallel: 2
"""


def one_sweep(base: Path, name: str, reuse: bool, seeds: int, programs: int) -> dict[str, float]:
    path = base / f"{name}.yaml"
    path.write_text(GRID.format(seeds=seeds, programs=programs))
    runner = SweepRunner(
        str(path),
        out_dir=base / name,
        progress=Progress(quiet=True),
        reuse=reuse,
    )
    began = time.monotonic()
    summary = runner.run()
    total = time.monotonic() - began
    assert summary["by_status"].get("completed") == summary["cells"], summary["by_status"]
    return {"runs_per_min": 60 * summary["cells"] / total, "total_s": total, **runner.timing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells-seeds", type=int, default=3, help="seeds per condition")
    parser.add_argument("--programs", type=int, default=20, help="caps.programs of each run")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {"before": [], "shared": []}
    with tempfile.TemporaryDirectory(prefix="swl-bench-sweep-") as tmp:
        base = Path(tmp)
        for i in range(args.rounds):  # each sweep starts its own Ray and Redis, as the CLI does
            for mode, reuse in (("before", False), ("shared", True)):
                row = one_sweep(base, f"{mode}-{i}", reuse, args.cells_seeds, args.programs)
                results[mode].append(row)
    cells = 2 * args.cells_seeds
    print(
        f"sweep: {cells} cells (2 conditions x {args.cells_seeds} seeds, 2 at a time), "
        f"caps.programs={args.programs}, {args.rounds} round(s); medians"
    )
    header = ("runs/min", 9), ("total s", 8), ("start-up s", 11), ("trees s", 8), ("analysis s", 11)
    print(f"{'':8} " + " ".join(f"{name:>{width}}" for name, width in header))
    med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in results.items()}
    for mode, row in med.items():
        print(
            f"{mode:8} {row['runs_per_min']:9.1f} {row['total_s']:8.1f} {row['start_up_s']:11.1f} "
            f"{row['trees_s']:8.1f} {row['analysis_s']:11.1f}"
        )
    ratio = med["shared"]["runs_per_min"] / med["before"]["runs_per_min"]
    print(f"shared / before: {ratio:.2f}x the runs per minute")
    return 0


if __name__ == "__main__":
    sys.exit(main())
