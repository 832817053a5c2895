"""The root dialogue of a run, as dialogue.json records it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RootDialogue(BaseModel):
    """The two turns before the root program: the question, then the push for a better way."""

    model_config = ConfigDict(extra="forbid")

    first_answer: str
    second_answer: str
    program: str | None
    """The code in the second answer, or None when the model answered in prose."""
