"""A run's journal determines its programs: each program's code, run again in process with its
transitions answered from the journal (as a re-run after a runner's loss is answered), takes the
path it took in the run, call for call. Runner-loss recovery relies on this, and so does the
sandbox floor of a real tree (`benchmarks/trees.py`), which answers each call with what it
answered in the run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers.journal_replay import answers_of, recorded_run

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster

pytestmark = pytest.mark.slow


def test_every_program_retakes_its_recorded_path_from_the_journal(
    ray_cluster: RayCluster, redis_url: str, tmp_path: Path
) -> None:
    spec = load_spec("paperclips", ["caps.programs=25"])
    result, journals = recorded_run(spec, redis_url, tmp_path / "run", Progress(quiet=True))
    assert len(result.programs) > 5
    assert sum(p.calls for p in result.programs) > 50

    answers, strayed = asyncio.run(answers_of(spec, result, journals))
    assert strayed == 0
    assert set(answers) == {p.id for p in result.programs}

    # A journal that lacks an answer the program needs sends it off its path, and that is seen.
    root = result.programs[0]
    assert root.calls > 2
    damaged = {**journals, root.id: {s: e for s, e in journals[root.id].items() if s != 2}}
    _, strayed = asyncio.run(answers_of(spec, result, damaged))
    assert strayed == 1
