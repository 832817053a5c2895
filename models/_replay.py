"""The `replay` backend: answer from a run's recorded completions, and notice divergence.

`<run_dir>/completions.jsonl` holds one model call a line:
`{"seed": int, "request": CompletionRequest, "completion": Completion}`. Every model call in a
run has its own seed (from the run seed, the program id and the call index), so a replayed
call finds its recording by seed. If the replayed run asks something else than the recorded
one did (another prompt, another max_tokens), the replay stops with the first difference:
from there on, recorded answers would no longer be answers to what is asked.

A recording may hold hundreds of thousands of calls, so what is kept of each is small: its line,
a digest of what was asked (the messages and max_tokens, all a replay compares) and the answer.
A call that differs from its recording reads that one line again to say where.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from swarmlab.core import ModelError, SpecError, json_lines, present

from ._base import Completion, CompletionRequest, ModelBackend, Usage, most_answer_chars

__all__ = ["COMPLETIONS_FILE", "RecordedCall", "ReplayBackend"]

COMPLETIONS_FILE = "completions.jsonl"


class RecordedCall(BaseModel):
    """One line of `completions.jsonl`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(description="The call's seed, unique within a run.")
    request: CompletionRequest = Field(description="What was asked.")
    completion: Completion = Field(description="What the model answered.")

    @model_validator(mode="after")
    def _answer_fits_the_request(self) -> RecordedCall:
        """An answer longer than any backend gives for what was asked was not recorded by a
        run: a live server's is cut to this (`most_answer_chars`)."""
        most = most_answer_chars(self.request.max_tokens)
        if len(self.completion.text) > most:
            raise ValueError(
                f"an answer of {len(self.completion.text)} characters to a call that asked "
                f"{self.request.max_tokens} tokens (at most {most})"
            )
        return self


class Kept(NamedTuple):
    """What a replay keeps of one recorded call: its line, `asked_digest` of its request, and
    its answer's fields (text, prompt and completion tokens, finish reason, model, latency)."""

    line: int
    asked: bytes
    answer: tuple[str, int, int, str, str, float]

    @property
    def completion(self) -> Completion:
        text, prompt_tokens, completion_tokens, finish_reason, model, latency_s = self.answer
        usage = Usage.model_construct(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        return Completion.model_construct(  # validated when it was read
            text=text, usage=usage, finish_reason=finish_reason, model=model, latency_s=latency_s
        )


def asked_digest(request: CompletionRequest) -> bytes:
    """A digest of what a replay compares: every message's role and content, and max_tokens."""
    asked = [[m.role, m.content] for m in request.messages], request.max_tokens
    return hashlib.blake2b(json.dumps(asked).encode(), digest_size=16).digest()


class ReplayBackend(ModelBackend):
    """Recorded completions of an earlier run, looked up by the request's seed."""

    name = "replay"

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.calls: dict[int, Kept] = _load(self.run_dir)

    async def generate(self, request: CompletionRequest) -> Completion:
        where = f"replay of {self.run_dir}"
        if request.seed is None:
            raise ModelError(f"{where}: the call has no seed, so no recording can match it")
        found = self.calls.get(request.seed)
        if found is None:
            raise ModelError(
                f"{where}: no recorded call has seed {request.seed}"
                f" (the recording holds {len(self.calls)} calls): the run diverged here,"
                f" asking {_show(request.last_user_text)}"
            )
        if asked_digest(request) == found.asked:
            return found.completion
        recorded = _read_line(self.run_dir / COMPLETIONS_FILE, found.line)
        difference = None if recorded is None else first_difference(recorded.request, request)
        if recorded is None or recorded.seed != request.seed or difference is None:
            raise ModelError(
                f"{where}: {COMPLETIONS_FILE} line {found.line} changed since the replay read it"
            )
        field, was, now = difference
        raise ModelError(
            f"{where}: call with seed {request.seed} ({COMPLETIONS_FILE} line {found.line})"
            f" diverged at {field}: recorded {was} vs now {now}"
        )


def first_difference(
    recorded: CompletionRequest, now: CompletionRequest
) -> tuple[str, str, str] | None:
    """The first field where a call differs from its recording: (field, recorded, now)."""
    for i, (old, new) in enumerate(zip(recorded.messages, now.messages, strict=False)):
        if old.role != new.role:
            return f"messages[{i}].role", old.role, new.role
        if old.content != new.content:
            pairs = enumerate(zip(old.content, new.content, strict=False))
            at = next((k for k, (a, b) in pairs if a != b), min(len(old.content), len(new.content)))
            return (
                f"messages[{i}].content (character {at})",
                _show(old.content, at),
                _show(new.content, at),
            )
    if len(recorded.messages) != len(now.messages):
        return "len(messages)", str(len(recorded.messages)), str(len(now.messages))
    if recorded.max_tokens != now.max_tokens:
        return "max_tokens", str(recorded.max_tokens), str(now.max_tokens)
    return None


def _load(run_dir: Path) -> dict[int, Kept]:
    if not run_dir.is_dir():
        raise ModelError(f"replay: no run directory {run_dir}")
    path = run_dir / COMPLETIONS_FILE
    if not present(path):
        raise ModelError(
            f"replay: {path} is missing (only runs that recorded their model calls can be replayed)"
        )
    calls: dict[int, Kept] = {}
    names: dict[str, str] = {}  # one copy of each model name and finish reason
    try:
        for number, data in json_lines(path):  # bounded, UTF-8, split on \n only
            call = _parse(path, number, data)
            if call.seed in calls:
                raise ModelError(
                    f"replay: {path} records seed {call.seed} twice"
                    f" (lines {calls[call.seed].line} and {number})"
                )
            c = call.completion
            answer = (
                c.text,
                c.usage.prompt_tokens,
                c.usage.completion_tokens,
                names.setdefault(c.finish_reason, c.finish_reason),
                names.setdefault(c.model, c.model),
                c.latency_s,
            )
            calls[call.seed] = Kept(number, asked_digest(call.request), answer)
    except SpecError as exc:
        raise ModelError(f"replay: {exc}") from None
    return calls


def _read_line(path: Path, line: int) -> RecordedCall | None:
    """The call recorded at `line` of `path` read again, or None if it no longer reads."""
    try:
        for number, data in json_lines(path):
            if number == line:
                return _parse(path, number, data)
    except (SpecError, ModelError):
        return None
    return None


def _parse(path: Path, number: int, data: Any) -> RecordedCall:
    try:
        return RecordedCall.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(line)"
        raise ModelError(f"replay: {path} line {number}: {field}: {first['msg']}") from None


def _show(text: str, at: int = 0, width: int = 40) -> str:
    """A short quoted excerpt of `text` from a little before character `at`."""
    start = max(0, at - 10)
    piece = text[start : start + width]
    return ("…" if start else "") + json.dumps(piece) + ("…" if start + width < len(text) else "")
