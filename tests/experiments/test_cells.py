"""A sweep's per-condition table, paired differences, die-out, plots and page, from result rows
made by hand (no runs needed)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from swarmlab.core import SpecError
from swarmlab.experiments import Cell, SweepSpec, cell_id, load_sweep
from swarmlab.experiments.sweeps._cells import cell_table, died_out, no_tree, write_csv
from swarmlab.experiments.sweeps._page import _cell_table, validity_note, write_sweep_page
from swarmlab.experiments.sweeps._plots import write_plots
from swarmlab.observability.analysis import BLIND
from swarmlab.spec import ExperimentSpec

GRID = SweepSpec(
    name="t",
    grid={"caps.tokens": [10000, 300000], "world.starting_money": [1000, 100000]},
    seeds=[1, 2, 3, 4],
)


def run_row(condition: dict[str, Any], seed: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"cell": cell_id(condition, seed), "seed": seed, "status": "completed"}
    row.update({f"condition.{k}": v for k, v in condition.items()})
    row.update({"spec.persona": "truthful-assistant", "spec.affordance": "none"})
    row.update({"caps.tokens.denied": 0, "caps.depth.denied": 0, "scaffold": True})
    row.update(values)
    row["died_out"] = died_out(row)
    return row


def grid_runs() -> tuple[list[Cell], list[dict[str, Any]]]:
    """Paperclips = money/10 + tokens/1000 + seed; programs = tokens/1000 + seed."""
    cells, rows = [], []
    for condition in GRID.conditions():
        tokens, money = condition["caps.tokens"], condition["world.starting_money"]
        for seed in GRID.seeds:
            cells.append(Cell(id="x", condition=condition, seed=seed, spec=ExperimentSpec()))
            rows.append(
                run_row(
                    condition,
                    seed,
                    **{
                        "outcome.paperclips": money / 10 + tokens / 1000 + seed,
                        "tree.size": tokens // 1000 + seed,
                        "caps.tokens.denied": 1 if seed != 4 else 0,  # seed 4 dies out
                    },
                )
            )
    return cells, rows


def test_each_condition_gets_n_mean_sd_median_and_intervals() -> None:
    cells, rows = grid_runs()
    rows[0]["status"] = "failed"  # 10k tokens, money 1000, seed 1 never finished
    table, _ = cell_table(GRID, cells, rows)
    assert [t["condition"] for t in table] == [
        "caps.tokens=10000, world.starting_money=1000",
        "caps.tokens=10000, world.starting_money=100000",
        "caps.tokens=300000, world.starting_money=1000",
        "caps.tokens=300000, world.starting_money=100000",
    ]
    first, last = table[0], table[3]
    assert (first["n"], first["n_not_finished"]) == (3, 1)
    assert first["paperclips_mean"] == pytest.approx(100 + 10 + 3)  # seeds 2, 3, 4
    assert first["paperclips_median"] == 113
    assert first["paperclips_sd"] == pytest.approx(1.0)
    assert last["programs_mean"] == pytest.approx(300 + 2.5)
    for row in table:
        for name in ("paperclips", "programs"):
            assert row[f"{name}_ci_low"] <= row[f"{name}_mean"] <= row[f"{name}_ci_high"]
    # died out: only seed 4 ended with no cap denying anything (Wilson interval around 1/4)
    assert (last["died_out_successes"], last["died_out_n"]) == (1, 4)
    assert 0 < last["died_out_ci_low"] < 0.25 < last["died_out_ci_high"] < 1
    assert last["capped.tokens"] == 3
    assert "scaffold_mean" in last
    assert "quine_rate_mean" not in last  # not in these rows: left out, not reported as zero


def test_paired_differences_hold_the_other_field_and_pair_by_seed() -> None:
    cells, rows = grid_runs()
    rows[5]["status"] = "failed"  # 10k tokens, money 100000, seed 2: its pair is dropped
    table, paired = cell_table(GRID, cells, rows)
    assert [t["baseline"] for t in table] == [
        "",
        "",
        "caps.tokens=10000, world.starting_money=1000",
        "caps.tokens=10000, world.starting_money=100000",
    ]
    clips = {p["condition"]: p for p in paired if p["metric"] == "paperclips"}
    rich = clips["caps.tokens=300000, world.starting_money=100000"]
    assert rich["baseline"] == "caps.tokens=10000, world.starting_money=100000"
    assert rich["n_pairs"] == 3
    assert (rich["mean_diff"], rich["sd_diff"], rich["ci_low"], rich["ci_high"]) == (
        290,
        0,
        290,
        290,
    )
    assert rich["d_z"] is None  # every seed differs by the same amount


def test_a_list_of_cells_pairs_each_with_the_baseline_cell() -> None:
    sweep = SweepSpec(
        name="a", cells=[{}, {"sim.policy": "null"}, {"sim.quine": 0}], baseline={}, seeds=[1, 2]
    )
    assert sweep.baseline_of({}) is None
    assert sweep.baseline_of({"sim.quine": 0}) == {}
    grid = SweepSpec(name="g", grid={"a": [1, 2], "b": [3, 4]}, baseline={"a": 2})
    assert grid.baseline_of({"a": 1, "b": 4}) == {"a": 2, "b": 4}
    assert grid.baseline_of({"a": 2, "b": 4}) is None
    with pytest.raises(ValueError, match="baseline"):
        SweepSpec(name="bad", grid={"a": [1, 2]}, baseline={"a": 5})
    with pytest.raises(ValueError, match="baseline"):
        SweepSpec(name="bad", cells=[{"x": 1}], baseline={"x": 2})


def test_a_sweep_file_with_a_bad_baseline_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ngrid: {caps.tokens: [1000]}\nbaseline: {caps.tokens: 5}\n")
    with pytest.raises(SpecError, match="baseline"):
        load_sweep(str(path))


def test_the_built_in_sweeps_have_20_seeds_and_their_controls() -> None:
    for name in ("pumping-curve", "sim-ablation", "masks"):
        sweep, _ = load_sweep(name)
        assert len(sweep.seeds) >= 20, name
    ablation, _ = load_sweep("sim-ablation")
    policies = {c.get("sim.policy", "story") for c in ablation.conditions()}
    assert policies == {"story", "null", "flat"}
    curve, _ = load_sweep("pumping-curve")
    assert curve.swept() == ["caps.tokens", "world.starting_money"]


def test_cells_csv_plots_and_page_show_the_intervals(tmp_path: Path) -> None:
    cells, rows = grid_runs()
    table, paired = cell_table(GRID, cells, rows)
    write_csv(table, tmp_path / "cells.csv")
    with (tmp_path / "cells.csv").open() as handle:
        header = next(csv.reader(handle))
    for name in ("paperclips", "programs", "died_out"):
        for suffix in ("mean", "sd", "median", "ci_low", "ci_high"):
            assert f"{name}_{suffix}" in header
    assert "n" in header
    plots = write_plots(rows, table, paired, GRID, tmp_path)
    names = {p.name for p in plots}
    assert {"by-caps.tokens.png", "died-out.png", "paired-differences.png"} <= names
    for path in plots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    summary = {"sweep": "t", "cells": 16, "by_status": {}, "swept": [], "seeds": GRID.seeds}
    page = write_sweep_page(tmp_path, summary, rows, table, paired, plots).read_text()
    mean, low, high = (table[3][f"paperclips_{k}"] for k in ("mean", "ci_low", "ci_high"))
    assert f"{mean:,.0f} [{low:,.0f}, {high:,.0f}]" in page
    assert "1/4" in page  # died out, as a count with its interval


def test_a_root_that_answered_in_prose_is_no_tree_not_a_tree_that_died_out() -> None:
    condition = {"caps.tokens": 10000, "world.starting_money": 1000}
    prose = run_row(condition, 1, scaffold=False)
    grew = run_row(condition, 2)
    assert (no_tree(prose), prose["died_out"]) == (True, False)
    assert (no_tree(grew), grew["died_out"]) == (False, True)
    failed = run_row(condition, 3, status="failed", scaffold=False)
    assert (no_tree(failed), failed["died_out"]) == (None, None)


def test_the_sweep_page_shows_each_detector_rate_with_its_blind_validity() -> None:
    """Beside a rate a detector makes, the sweep page shows the detector's blind precision
    and recall, marked when below the floor; tree size carries none."""
    cells, rows = grid_runs()
    for row in rows:
        row["metric.quine_rate"] = 0.1
    table, _ = cell_table(GRID, cells, rows)
    page = _cell_table(table)
    quine = BLIND["quine"]
    assert f"blind P {quine.precision:.2f} · R {quine.recall:.2f}" in page
    assert ("below 0.9" in page) is quine.below_floor
    assert validity_note("programs") == ""
    assert "no tree" in page


def test_a_table_of_many_outcome_keys_is_written_in_linear_time(tmp_path: Path) -> None:
    """A cell's summary.json may hold any number of outcome keys: the table's columns were a
    list searched once per key of every row, so 50,000 keys in two cells took minutes."""
    from swarmlab.experiments.sweeps._cells import all_columns, write_csv

    rows = [{"cell": "a", **{f"k{i}": i for i in range(100_000)}}, {"cell": "b", "j0": 1}]
    write_csv(rows, tmp_path / "results.csv")
    with (tmp_path / "results.csv").open(newline="") as handle:
        header = next(csv.reader(handle))
    assert header == all_columns(rows)
    assert header[:3] == ["cell", "k0", "k1"]
    assert header[-1] == "j0"
    assert len(header) == 100_002
