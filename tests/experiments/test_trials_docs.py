"""docs/trials.md stays true to the code: every column and question the trials write is
described there."""

from __future__ import annotations

from pathlib import Path

from swarmlab.experiments.trials._export import STEP_COLUMNS
from swarmlab.experiments.trials._measures import DETECTORS
from swarmlab.experiments.trials._table import BINARY, COUNTS, TRIAL_COLUMNS

DOC = Path(__file__).parents[2] / "docs" / "trials.md"


def test_every_column_and_question_is_documented() -> None:
    text = DOC.read_text()
    for name in (*TRIAL_COLUMNS, *STEP_COLUMNS, *BINARY, *COUNTS):
        assert f"`{name}`" in text, f"docs/trials.md does not describe `{name}`"
    for name, question in DETECTORS.items():
        assert f"`{name}`" in text
        assert question.split("(")[0].strip().rstrip("?") in text, name
