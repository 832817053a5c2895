"""The trial tables judge re-creation with the report's validated quine detector: one rule for
the report, the tripwire and the tables, checked on the labelled development set's
re-creations and near misses (run in the real sandbox)."""

from __future__ import annotations

from pathlib import Path

from helpers.labelled_set import DATA, label_sets, load_items, run_items

from swarmlab.experiments.trials._measures import measure_trial, program_flags
from swarmlab.observability.analysis import analyze_run

QUINE_ITEMS = ("dev/quines.yaml", "dev/strings_and_runtime_code.yaml")


def test_the_tables_flag_exactly_the_labelled_re_creations(tmp_path: Path) -> None:
    items = [i for i in load_items(DATA) if i.file in QUINE_ITEMS]
    assert len(items) >= 10
    for item, run_dir in zip(items, run_items(items, tmp_path).values(), strict=True):
        flags = program_flags(run_dir)
        flagged = {pid for pid, f in flags.items() if f["recreates_parent"]}
        assert flagged == label_sets(item)["quine"], item.id
        metrics = analyze_run(run_dir)
        measures = measure_trial(run_dir)
        assert measures.recreations == len(flagged)
        assert measures.recreation_chain == metrics.quine_chain
