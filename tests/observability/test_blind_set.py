"""The blind sets are frozen: their files are the ones their SHA256SUMS name, byte for byte.

Each round (tests/data/detectors-blind/round-N) was written and committed, with its hashes,
before any detector was changed for it (issue 22); its figures mean something only while the set
stays the one that was frozen. `FROZEN` holds the sha256 of each round's SHA256SUMS itself, so
editing an item and its line in SHA256SUMS together still fails here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from helpers.blind_set import (
    BLIND_ROUND_1,
    BLIND_ROUND_2,
    BLIND_ROUND_3,
    BLIND_ROUND_4,
    BLIND_ROUND_5,
    blind_table,
    score_blind,
)
from helpers.labelled_set import DETECTORS, load_items, run_items

from swarmlab.observability.analysis import BLIND

ROOT = Path(__file__).resolve().parents[2]
FROZEN = {
    BLIND_ROUND_1: "3eda0013541fa4daf935290aa1e1c71d76708d79ef5f3bd5b01f0ac254177ab3",
    BLIND_ROUND_2: "e35f3074ad7a6ee93e257884691d80b7a81fe9a4f79abacd2cd3747ad866ad4a",
    BLIND_ROUND_3: "ab1bddef811700c60d523fda6c5739c188d4f38693ac6c655164f2f2de61a397",
    BLIND_ROUND_4: "7fa1918bd63e9adb5196579b55cc0935f7e403ca67be9d315115b48cc77c8df3",
    BLIND_ROUND_5: "5a97f5a56582f2882f610713b763c3c93b7a9e735c5befb259372e7cfc4eb786",
}
# The sha256 of each table scored once and kept as it was scored: each round's "before any
# change" table, and each earlier round's "after the change" (the detectors have changed since,
# and "the detectors now" holds what they score). The latest "after the change" is recomputed
# below instead.
SCORED_ONCE_SHA256 = {
    "Blind set, round 1: before any change": (
        "b87da34ac12684ee6203f6a1394f1f345064cf7d04fd590f40d372ad83041626"
    ),
    "Blind set, round 2: before any change": (
        "cb350a8220a056be9616703151f233db22c432df622e650db9fde4a0c6f4a93b"
    ),
    "Blind set, round 3: before any change": (
        "ee8567905a4a1b1a705f0ac06253b257d82cfbfc6176fce35dd6693a01cf5447"
    ),
    "Blind set, round 4: before any change": (
        "5ca4d2ac22fa4310f7fcc16b5858b1b0434c84cdeb2791ea7dc4174b2f30757d"
    ),
    "Blind set, round 5: before any change": (
        "a9253746ab49ff7341da1e929d9e7e85aba2253a812ef0aa4b71dc36c353f4f1"
    ),
    "Blind set, round 2: after the change": (
        "556ac0c29a6d70b200d0d117486209248b4d415571191a8cf633e9ba2ff469d3"
    ),
    "Blind set, round 3: after the change": (
        "be95bf890935a009ac76ef5b39296a1091867b6ce906064b76f9572b0d6e6d34"
    ),
    "Blind set, round 4: after the change": (
        "839cd022b3c6a1a729b223141d64d52388dda364de4affa72c847c971804ef6d"
    ),
}


def _listed(folder: Path) -> dict[str, str]:
    sums = (folder / "SHA256SUMS").read_bytes()
    assert hashlib.sha256(sums).hexdigest() == FROZEN[folder], "SHA256SUMS changed"
    listed = {}
    for line in sums.decode().split("\n"):
        if line:
            digest, name = line.split("  ", 1)
            listed[name] = digest
    return listed


@pytest.mark.parametrize("folder", list(FROZEN), ids=lambda f: f.name)
def test_every_file_of_a_frozen_set_has_its_recorded_hash(folder: Path) -> None:
    listed = _listed(folder)
    present = {p.name for p in folder.iterdir()} - {"SHA256SUMS"}
    assert present == set(listed), "files added to or removed from the frozen set"
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_every_blind_round_is_frozen_here() -> None:
    """A new round's folder cannot go unchecked: each one has its hash in `FROZEN`."""
    rounds = {p for p in BLIND_ROUND_1.parent.iterdir() if p.is_dir()}
    assert rounds == set(FROZEN)


@pytest.mark.parametrize("folder", list(FROZEN), ids=lambda f: f.name)
def test_a_frozen_set_is_big_enough_and_labels_every_detector(folder: Path, tmp_path: Path) -> None:
    items = load_items(folder)
    programs = sum(
        (d / "programs.jsonl").read_text().count("\n") for d in run_items(items, tmp_path).values()
    )
    assert programs >= 100
    assert {name for item in items for name in item.labels} == set(DETECTORS)


def _section(heading: str) -> str:
    page = (ROOT / "docs" / "metrics.md").read_text()
    return page.split(f"### {heading}", 1)[1].split("\n### ", 1)[0]


@pytest.mark.parametrize(
    ("heading", "folder"),
    [
        ("Blind set, round 1: the detectors now", BLIND_ROUND_1),
        ("Blind set, round 2: the detectors now", BLIND_ROUND_2),
        ("Blind set, round 3: the detectors now", BLIND_ROUND_3),
        ("Blind set, round 4: the detectors now", BLIND_ROUND_4),
        ("Blind set, round 5: after the change", BLIND_ROUND_5),
    ],
    ids=["round-1", "round-2", "round-3", "round-4", "round-5"],
)
def test_docs_show_what_the_detectors_as_they_are_score(
    heading: str, folder: Path, tmp_path: Path
) -> None:
    """Each round's "now" table (development data since its misses were read) is what the
    detectors as they are score: a detector changed later fails here until its figures are
    re-scored."""
    assert blind_table(score_blind(folder, tmp_path)) in _section(heading)


@pytest.mark.parametrize("heading", list(SCORED_ONCE_SHA256))
def test_a_rounds_blind_figures_stay_as_they_were_scored(heading: str) -> None:
    """Each blind table is the one scored once, while its set was blind ("before any change"
    after its freeze; each "after the change" too); later changes add tables, they never
    rewrite one."""
    section = _section(heading)
    table = section[section.index("| detector |") :].split("\n\n", 1)[0]
    assert hashlib.sha256(table.encode()).hexdigest() == SCORED_ONCE_SHA256[heading]


def test_the_validity_shown_beside_counts_is_the_blind_table_of_the_docs() -> None:
    """The report and sweep pages read each detector's blind figures from one place
    (`swarmlab.observability.analysis.BLIND`); it holds what docs/metrics.md's latest blind
    table shows (round 5 "after the change", recomputed above)."""
    section = _section("Blind set, round 5: after the change")
    shown = {}
    for line in section.split("\n"):
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 12 and cells[1] in BLIND:
            shown[cells[1]] = (float(cells[7]), float(cells[9]))
    assert shown == {d: (v.precision, v.recall) for d, v in BLIND.items()}
