"""Replay: recorded completions come back by seed; the first divergence stops the replay."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from swarmlab.models import (
    Completion,
    CompletionRequest,
    Message,
    ModelError,
    Usage,
    create_backend,
)
from swarmlab.models._replay import ReplayBackend


def request(seed: int, text: str, max_tokens: int = 64) -> CompletionRequest:
    return CompletionRequest(
        messages=(
            Message(role="system", content="You are a helpful assistant."),
            Message(role="user", content=text),
        ),
        max_tokens=max_tokens,
        seed=seed,
    )


def completion(text: str) -> Completion:
    return Completion(
        text=text,
        usage=Usage(prompt_tokens=20, completion_tokens=5),
        finish_reason="stop",
        model="local:SmolLM2-135M-Instruct",
        latency_s=0.4,
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    calls = [
        (11, request(11, "best way to get lots of paperclips by tomorrow"), completion("Buy.")),
        (12, request(12, "whats a better way?"), completion("```python\nrun_ai('x')\n```")),
    ]
    lines = [
        json.dumps({"seed": s, "request": r.model_dump(), "completion": c.model_dump()})
        for s, r, c in calls
    ]
    (tmp_path / "completions.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def replay(backend: ReplayBackend, req: CompletionRequest) -> Completion:
    return asyncio.run(backend.generate(req))


def test_returns_the_recorded_completions(run_dir: Path) -> None:
    backend = create_backend(f"replay:{run_dir}")
    assert isinstance(backend, ReplayBackend)
    second = replay(backend, request(12, "whats a better way?"))
    first = replay(backend, request(11, "best way to get lots of paperclips by tomorrow"))
    assert first == completion("Buy.")
    assert second.text.startswith("```python")


def test_a_changed_prompt_names_the_call_field_and_both_values(run_dir: Path) -> None:
    with pytest.raises(ModelError) as caught:
        replay(ReplayBackend(run_dir), request(11, "best way to get lots of staples by tomorrow"))
    message = str(caught.value)
    assert "\n" not in message
    assert "call with seed 11 (completions.jsonl line 1)" in message
    assert "diverged at messages[1].content (character 24)" in message
    assert 'recorded …"t lots of paperclips by tomorrow"' in message
    assert 'vs now …"t lots of staples by tomorrow"' in message


def test_a_changed_max_tokens_is_a_divergence(run_dir: Path) -> None:
    with pytest.raises(ModelError, match="diverged at max_tokens: recorded 64 vs now 128"):
        replay(ReplayBackend(run_dir), request(12, "whats a better way?", max_tokens=128))


def test_an_extra_message_is_a_divergence(run_dir: Path) -> None:
    longer = request(12, "whats a better way?")
    longer = longer.model_copy(
        update={"messages": (*longer.messages, Message(role="user", content="more"))}
    )
    with pytest.raises(ModelError, match=r"diverged at len\(messages\): recorded 2 vs now 3"):
        replay(ReplayBackend(run_dir), longer)


def test_an_unrecorded_seed_is_a_divergence(run_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"no recorded call has seed 99 .*holds 2 calls"):
        replay(ReplayBackend(run_dir), request(99, "list ideas"))


def test_missing_directory_or_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=f"replay: no run directory {tmp_path / 'nope'}"):
        create_backend(f"replay:{tmp_path / 'nope'}")
    with pytest.raises(ModelError, match=r"completions\.jsonl is missing"):
        ReplayBackend(tmp_path)
    with pytest.raises(ModelError, match="needs a run directory"):
        create_backend("replay")


def test_bad_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "completions.jsonl"
    path.write_text('{"seed": 1}\n')
    with pytest.raises(ModelError, match="line 1: request: Field required"):
        ReplayBackend(tmp_path)
    path.write_text("\n{not json\n")
    with pytest.raises(ModelError, match=r"completions\.jsonl:2: not JSON"):
        ReplayBackend(tmp_path)


def test_a_seed_recorded_twice_is_refused(run_dir: Path) -> None:
    path = run_dir / "completions.jsonl"
    first = path.read_text().splitlines()[0]
    path.write_text(path.read_text() + first + "\n")
    with pytest.raises(ModelError, match=r"records seed 11 twice \(lines 1 and 3\)"):
        ReplayBackend(run_dir)


def test_a_line_changed_after_it_was_read_is_named(run_dir: Path) -> None:
    backend = ReplayBackend(run_dir)
    path = run_dir / "completions.jsonl"
    path.write_text(path.read_text().replace("paperclips", "staples"))
    # Asked as recorded, but the line no longer says so: the replay cannot say where it differs.
    with pytest.raises(ModelError, match=r"completions\.jsonl line 1 changed since the replay"):
        replay(backend, request(11, "best way to get lots of staples by tomorrow"))
    assert replay(backend, request(12, "whats a better way?")).text.startswith("```python")


def test_what_a_replay_keeps_grows_with_the_answers_not_the_requests(tmp_path: Path) -> None:
    # A recording of 400 calls, each asked with 12 KB of prompt and answered in a few bytes:
    # what the backend keeps is its answers and a digest of each request, not the requests.
    import tracemalloc

    prompt = "You are one program of many; plan the next step. " * 250
    lines = [
        json.dumps(
            {
                "seed": s,
                "request": request(s, f"{prompt} {s}").model_dump(),
                "completion": completion(f"ok {s}").model_dump(),
            }
        )
        for s in range(400)
    ]
    (tmp_path / "completions.jsonl").write_text("\n".join(lines) + "\n")
    size = (tmp_path / "completions.jsonl").stat().st_size
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        backend = ReplayBackend(tmp_path)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert size > 5_000_000
    assert kept < size / 20, f"{kept} bytes kept of a {size}-byte recording"
    assert replay(backend, request(7, f"{prompt} 7")) == completion("ok 7")
