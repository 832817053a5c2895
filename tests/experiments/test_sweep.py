"""Sweeps: conditions x seeds on Ray, a results table and plots, resume, a global budget, and
the pumping curve."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.experiments import SweepRunner

pytestmark = pytest.mark.slow

SMALL = """
name: small
base: paperclips
set:
  caps.programs: 12
  caps.depth: 2
grid:
  persona: [truthful-assistant, cautious-oracle]
  affordance: [none, api]
seeds: [1, 2]
parallel: 2
"""


def sweep(tmp_path: Path, text: str, redis_url: str, out: str = "out") -> tuple[SweepRunner, Any]:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    runner = SweepRunner(
        str(path), out_dir=tmp_path / out, redis_url=redis_url, progress=Progress(quiet=True)
    )
    return runner, runner.run()


def read_rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_a_small_sweep_writes_its_table_plots_and_page(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    runner, summary = sweep(tmp_path, SMALL, redis_url)
    out = runner.out
    assert summary["cells"] == 8
    assert summary["by_status"] == {"completed": 8}
    rows = read_rows(out)
    assert len(rows) == 8
    combos = {(r["condition.persona"], r["condition.affordance"], r["seed"]) for r in rows}
    assert len(combos) == 8
    for row in rows:
        assert int(row["caps.programs.used"]) <= 12
        for column in (
            "metric.programs",
            "metric.scaffold",
            "metric.swarm_call_share",
            "spec.caps.programs",
            "spec.affordance",
        ):
            assert column in row
    table = pq.read_table(out / "results.parquet")
    assert table.num_rows == 8
    assert "metric.quine_rate" in table.column_names
    with (out / "cells.csv").open() as handle:
        cells = list(csv.DictReader(handle))
    assert len(cells) == 4
    assert all(c["n"] == "2" for c in cells)
    for name in (
        "by-persona.png",
        "by-affordance.png",
        "denials-by-cap.png",
        "scaffold-by-persona.png",
        "died-out.png",
        "paired-differences.png",
    ):
        png = out / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    page = (out / "index.html").read_text()
    assert "data:image/png;base64," in page
    assert "cells/" in page
    assert all((out / "cells" / r["cell"] / "report.html").exists() for r in rows)


def test_a_resumed_sweep_skips_finished_cells(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    text = SMALL.replace("affordance: [none, api]", "affordance: [none]")
    runner, _ = sweep(tmp_path, text, redis_url)
    cells = sorted((runner.out / "cells").iterdir())
    stamps = {c.name: (c / "summary.json").stat().st_mtime_ns for c in cells}
    redo = cells[0]
    (redo / "summary.json").unlink()
    _, summary = sweep(tmp_path, text, redis_url)
    assert summary["by_status"] == {"completed": 4}
    for cell in cells:
        now = (cell / "summary.json").stat().st_mtime_ns
        if cell == redo:
            assert now != stamps[cell.name]
        else:
            assert now == stamps[cell.name], f"{cell.name} ran again"


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, closed_port: int
) -> None:
    text = SMALL.replace(
        "affordance: [none, api]", f"model: [sim, 'openai:http://127.0.0.1:{closed_port}/v1']"
    ).replace("persona: [truthful-assistant, cautious-oracle]", "seed_note: [x]")
    text = text.replace("  seed_note: [x]\n", "")
    runner, summary = sweep(tmp_path, text, redis_url)
    rows = read_rows(runner.out)
    by_model = {r["condition.model"]: r["status"] for r in rows}
    assert by_model["sim"] == "completed"
    assert by_model[f"openai:http://127.0.0.1:{closed_port}/v1"] == "failed"
    assert summary["cells"] == 4


def test_the_sweep_budget_holds_over_all_its_runs(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    text = SMALL.replace("caps.programs: 12", "caps.programs: 40\n  caps.depth: 4").replace(
        "parallel: 2", "parallel: 2\nbudget:\n  programs: 30"
    )
    text = text.replace("  caps.depth: 2\n", "")
    runner, _ = sweep(tmp_path, text, redis_url)
    rows = read_rows(runner.out)
    total = sum(int(r["caps.programs.used"]) for r in rows if r["status"] == "completed")
    assert total <= 30
    assert any(int(r.get("denials.sweep.programs") or 0) > 0 for r in rows)


def test_the_pumping_curve_writes_cells_with_intervals_by_budget_and_money(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    """The built-in sweep on two of its seeds: the tree grows with the budget (by construction
    of its supercritical policy) at either starting money, and every cell has its interval."""
    runner = SweepRunner(
        "pumping-curve",
        out_dir=tmp_path / "curve",
        redis_url=redis_url,
        progress=Progress(quiet=True),
        seeds=[1, 2],
    )
    summary = runner.run()
    assert summary["by_status"] == {"completed": 16}
    with (runner.out / "cells.csv").open() as handle:
        cells = list(csv.DictReader(handle))
    assert len(cells) == 8
    sizes: dict[str, dict[int, float]] = {}
    for cell in cells:
        for metric in ("programs", "paperclips", "died_out"):
            for column in ("mean", "sd", "ci_low", "ci_high"):
                assert cell[f"{metric}_{column}"] != "", (cell["condition"], metric, column)
        assert float(cell["programs_ci_low"]) <= float(cell["programs_mean"])
        assert float(cell["programs_mean"]) <= float(cell["programs_ci_high"])
        money = cell["condition.world.starting_money"]
        sizes.setdefault(money, {})[int(cell["condition.caps.tokens"])] = float(
            cell["programs_mean"]
        )
    for money, by_budget in sizes.items():
        means = [by_budget[b] for b in sorted(by_budget)]
        assert means == sorted(means), f"money {money}: mean tree size by budget {by_budget}"
        assert means[-1] > 3 * means[0]
    with (runner.out / "paired.csv").open() as handle:
        paired = [p for p in csv.DictReader(handle) if p["metric"] == "programs"]
    assert len(paired) == 6  # three budgets above 10k, at each money
    assert all(p["baseline"].startswith("caps.tokens=10000") for p in paired)
    sweep = json.loads((runner.out / "sweep.json").read_text())
    assert sweep["swept"] == ["caps.tokens", "world.starting_money"]
    assert sweep["seeds"] == [1, 2]
    assert (runner.out / "plots" / "by-caps.tokens.png").exists()
