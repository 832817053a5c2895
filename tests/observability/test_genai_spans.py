"""Chat spans follow the GenAI conventions: kind CLIENT, one span per call covering the call's
whole duration, the requested model's own name with the backend as provider, and the request to
the model server carries a traceparent that names the call's span."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.fake_endpoint import serving

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.runtime import RunOptions, run_experiment

LATENCY_S = 0.15


def test_the_root_dialogue_calls_are_client_chat_spans_that_the_server_joins(
    tmp_path: Path, redis_url: str
) -> None:
    with serving(delay_s=LATENCY_S, text="Just buy paperclips.") as server:
        spec = load_spec("paperclips", [f"model=openai:{server.url}", "model_name=fake-model"])
        options = RunOptions(
            out_dir=tmp_path / "run", redis_url=redis_url, progress=Progress(quiet=True)
        )
        result = run_experiment(spec, options)
        posts = server.chat_posts()
    assert result.ended_because == "the model answered in prose: no program to run"
    spans = [json.loads(line) for line in result.spans]
    chats = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert len(chats) == len(posts) == 2  # the question and the push for a better way
    for chat, post in zip(sorted(chats, key=lambda s: s["start_ns"]), posts, strict=True):
        assert chat["name"] == "chat fake-model"
        assert chat["kind"] == "CLIENT"
        attrs = chat["attributes"]
        assert attrs["gen_ai.request.model"] == "fake-model"
        assert attrs["gen_ai.response.model"] == "fake-model"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert chat["end_ns"] - chat["start_ns"] >= LATENCY_S * 1e9
        _, trace_id, span_id, _ = post["headers"]["traceparent"].split("-")
        assert (trace_id, span_id) == (chat["trace_id"], chat["span_id"])


PROGRAM_CALLS = """
answers = [run_ai("idea " + str(i), max_tokens=8) for i in range(3)]
kid = spawn("run_ai('one more idea', max_tokens=8)", task="asks once")
wait([kid])
len(answers)
"""


def test_a_program_model_call_slower_than_a_park_has_one_chat_span_the_server_joins(
    tmp_path: Path, redis_url: str
) -> None:
    with serving(delay_s=LATENCY_S) as server:
        spec = load_spec("paperclips", [f"model=openai:{server.url}", "model_name=fake-model"])
        options = RunOptions(
            program=PROGRAM_CALLS,
            out_dir=tmp_path / "run",
            redis_url=redis_url,
            progress=Progress(quiet=True),
        )
        result = run_experiment(spec, options)
        posts = server.chat_posts()
    assert result.status == "completed"
    assert result.programs[0].result == 3
    spans = [json.loads(line) for line in result.spans]
    programs = {s["span_id"] for s in spans if s["name"] == "invoke_agent program"}
    chats = [s for s in spans if s["name"].startswith("chat")]
    assert len(chats) == len(posts) == 4  # one span per call, however long it parked
    by_id = {c["span_id"]: c for c in chats}
    for post in posts:
        _, trace_id, span_id, _ = post["headers"]["traceparent"].split("-")
        chat = by_id.pop(span_id)  # the span the server's traceparent names, once
        assert chat["trace_id"] == trace_id
        assert chat["name"] == "chat fake-model"
        assert chat["kind"] == "CLIENT"
        assert chat["parent_span_id"] in programs
        attrs = chat["attributes"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] == "fake-model"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.usage.output_tokens"] == 3
        assert chat["end_ns"] - chat["start_ns"] >= LATENCY_S * 1e9  # the whole call
    assert not by_id
