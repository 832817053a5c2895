"""The blind set is frozen: its files are the ones its SHA256SUMS names, byte for byte.

tests/data/detectors-blind/round-1 was written and committed, with its hashes, before any
detector was changed for it (issue 22); its figures mean something only while the set stays the
one that was frozen. `SET_SHA256` is the sha256 of SHA256SUMS itself, so editing an item and its
line in SHA256SUMS together still fails here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from helpers.blind_set import BLIND_ROUND_1, blind_table, score_blind
from helpers.labelled_set import DETECTORS, load_items, run_items

from swarmlab.observability.analysis import BLIND

ROOT = Path(__file__).resolve().parents[2]
SET_SHA256 = "3eda0013541fa4daf935290aa1e1c71d76708d79ef5f3bd5b01f0ac254177ab3"
# The sha256 of the "before any change" table as first scored.
BEFORE_TABLE_SHA256 = "b87da34ac12684ee6203f6a1394f1f345064cf7d04fd590f40d372ad83041626"


def _listed() -> dict[str, str]:
    sums = (BLIND_ROUND_1 / "SHA256SUMS").read_bytes()
    assert hashlib.sha256(sums).hexdigest() == SET_SHA256, "SHA256SUMS changed"
    listed = {}
    for line in sums.decode().split("\n"):
        if line:
            digest, name = line.split("  ", 1)
            listed[name] = digest
    return listed


def test_every_file_of_the_frozen_set_has_its_recorded_hash() -> None:
    listed = _listed()
    present = {p.name for p in BLIND_ROUND_1.iterdir()} - {"SHA256SUMS"}
    assert present == set(listed), "files added to or removed from the frozen set"
    for name, digest in listed.items():
        assert hashlib.sha256((BLIND_ROUND_1 / name).read_bytes()).hexdigest() == digest, name


def test_the_frozen_set_is_big_enough_and_labels_every_detector(tmp_path: Path) -> None:
    items = load_items(BLIND_ROUND_1)
    programs = sum(
        (d / "programs.jsonl").read_text().count("\n") for d in run_items(items, tmp_path).values()
    )
    assert programs >= 100
    assert {name for item in items for name in item.labels} == set(DETECTORS)


def _section(heading: str) -> str:
    page = (ROOT / "docs" / "metrics.md").read_text()
    return page.split(f"### {heading}", 1)[1].split("\n### ", 1)[0]


def test_docs_show_the_blind_figures_of_the_detectors_now(tmp_path: Path) -> None:
    """The page's "now" table is what the frozen set scores with the detectors as they are."""
    section = _section("Blind set, round 1: the detectors now")
    assert blind_table(score_blind(BLIND_ROUND_1, tmp_path)) in section


def test_the_first_blind_figures_stay_as_they_were_scored() -> None:
    """The "before any change" table is the one scored once at the freeze (commit "Score the
    frozen blind set once"); later rounds add tables, they never rewrite that one."""
    section = _section("Blind set, round 1: before any change")
    table = section[section.index("| detector |") :].split("\n\n", 1)[0]
    assert hashlib.sha256(table.encode()).hexdigest() == BEFORE_TABLE_SHA256


def test_the_validity_shown_beside_counts_is_the_blind_table_of_the_docs() -> None:
    """The report and sweep pages read each detector's blind figures from one place
    (`swarmlab.observability.analysis.BLIND`); it holds what docs/metrics.md's "now" table
    shows (whose figures the test above recomputes)."""
    section = _section("Blind set, round 1: the detectors now")
    shown = {}
    for line in section.split("\n"):
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 12 and cells[1] in BLIND:
            shown[cells[1]] = (float(cells[7]), float(cells[9]))
    assert shown == {d: (v.precision, v.recall) for d, v in BLIND.items()}
