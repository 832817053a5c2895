"""A run whose model answered in prose ran no program: its world is as it began. Before, no
runner had set the world's money, and summary.json said `money_left: 0.0` of 1,000."""

from __future__ import annotations

from pathlib import Path

from helpers.fake_endpoint import serving

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.runtime import RunOptions, run_experiment


def test_a_run_that_ran_no_program_keeps_its_starting_money(tmp_path: Path, redis_url: str) -> None:
    with serving(text="Just buy paperclips.") as server:
        spec = load_spec(
            "paperclips", [f"model=openai:{server.url}", "world.starting_money=1234.5"]
        )
        options = RunOptions(
            out_dir=tmp_path / "run", redis_url=redis_url, progress=Progress(quiet=True)
        )
        result = run_experiment(spec, options)
    assert result.ended_because == "the model answered in prose: no program to run"
    assert result.outcome["money_left"] == 1234.5
    assert result.outcome["money_spent"] == 0.0
    assert result.outcome["paperclips"] == 0
