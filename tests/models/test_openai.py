"""The openai backend: retries, timeouts and the in-flight bound against a server that fails on
purpose, and real completions from a vLLM CPU server with the bundled model."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.models import CompletionRequest, Message, ModelError, create_backend
from swarmlab.models._base import MAX_REPORTED_TOKENS
from swarmlab.models._openai import OpenAIBackend, request_headers

Start = Callable[..., Any]  # conftest's fake_endpoint: starts a scripted FakeEndpoint


def ask(text: str = "Say hi.", **fields: Any) -> CompletionRequest:
    return CompletionRequest(messages=(Message(role="user", content=text),), **fields)


def generate(backend: OpenAIBackend, request: CompletionRequest | None = None) -> Any:
    async def go() -> Any:
        try:
            return await backend.generate(request or ask())
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_parses_text_usage_and_finish_reason(fake_endpoint: Start) -> None:
    server = fake_endpoint(text="forty-two", finish_reason="length")
    completion = generate(OpenAIBackend(server.url, "fake-model"), ask(max_tokens=3, seed=7))
    assert completion.text == "forty-two"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 3)
    assert completion.finish_reason == "length"
    assert completion.model == "openai:fake-model"
    assert completion.latency_s > 0
    sent = server.chat_posts()[0]["body"]
    assert sent["model"] == "fake-model"
    assert sent["max_tokens"] == 3
    assert sent["seed"] == 7
    assert sent["messages"] == [{"role": "user", "content": "Say hi."}]


def test_discovers_the_model_name(fake_endpoint: Start) -> None:
    server = fake_endpoint(models=["served-name"])
    backend = OpenAIBackend(server.url)
    generate(backend)
    assert backend.model_name == "served-name"
    assert server.chat_posts()[0]["body"]["model"] == "served-name"


def test_a_listed_name_too_long_to_be_one_is_not_taken(fake_endpoint: Start) -> None:
    server = fake_endpoint(models=["m" * 300, "served-name"])
    backend = OpenAIBackend(server.url)
    generate(backend)
    assert backend.model_name == "served-name"


def test_several_models_need_a_name(fake_endpoint: Start) -> None:
    server = fake_endpoint(models=["a", "b"])
    with pytest.raises(ModelError, match=r"serves several models \(a, b\): set model_name"):
        generate(OpenAIBackend(server.url))


def test_retries_5xx_then_succeeds(fake_endpoint: Start) -> None:
    server = fake_endpoint(script=[(500, {}, {"error": {"message": "boom"}}), (502, {}, "")])
    completion = generate(OpenAIBackend(server.url, "m", retries=3, backoff_s=0.01))
    assert completion.text == "hello"
    assert len(server.chat_posts()) == 3


def test_honours_retry_after_on_429(fake_endpoint: Start) -> None:
    server = fake_endpoint(script=[(429, {"Retry-After": "1"}, {"message": "slow down"})])
    generate(OpenAIBackend(server.url, "m", retries=2, backoff_s=0.01))
    first, second = server.chat_posts()
    assert second["t"] - first["t"] >= 1.0


def test_gives_up_with_one_line_naming_the_endpoint(fake_endpoint: Start) -> None:
    server = fake_endpoint(default=(503, {}, {"object": "error", "message": "overloaded"}))
    with pytest.raises(ModelError) as caught:
        generate(OpenAIBackend(server.url, "m", retries=2, backoff_s=0.01))
    message = str(caught.value)
    assert message == f"model endpoint {server.url}: HTTP 503: overloaded (after 3 attempts)"
    assert len(server.chat_posts()) == 3


def test_client_errors_are_not_retried(fake_endpoint: Start) -> None:
    bad = {"object": "error", "message": "max_tokens is too large", "code": 400}
    server = fake_endpoint(default=(400, {}, bad))
    with pytest.raises(ModelError, match="HTTP 400 on POST /chat/completions: max_tokens is too"):
        generate(OpenAIBackend(server.url, "m", retries=3, backoff_s=0.01))
    assert len(server.chat_posts()) == 1


def test_connection_refused_names_the_endpoint(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    with pytest.raises(ModelError) as caught:
        generate(OpenAIBackend(url, "m", retries=1, backoff_s=0.01))
    assert str(caught.value) == (
        f"model endpoint {url}: cannot connect (connection refused) (after 2 attempts)"
    )


def test_a_server_that_drops_every_connection_is_a_model_error_on_uvloop() -> None:
    """A server (or a proxy in front of one) that accepts and at once resets connections. On
    uvloop, which Ray's actors run on, the HTTP stack then sometimes asks a closed transport for
    its socket and fails with AttributeError: that must still be a failed call, not a fault of
    the lab's runner."""
    import socket
    import threading

    import uvloop

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    linger_zero = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # close with a reset

    def drop() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
                conn.close()

    threading.Thread(target=drop, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"

    async def go() -> set[str]:
        backend = OpenAIBackend(url, "m", retries=1, backoff_s=0.001)
        seen = set()
        for _ in range(300):
            try:
                await backend.generate(ask(max_tokens=3))
            except Exception as exc:
                seen.add(type(exc).__name__)
        await backend.aclose()
        return seen

    try:
        assert uvloop.run(go()) == {"ModelError"}
    finally:
        server.close()


def test_a_slow_answer_times_out_without_retry(fake_endpoint: Start) -> None:
    server = fake_endpoint(delay_s=1.5)
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"no answer within 0\.3 s"):
        generate(OpenAIBackend(server.url, "m", timeout_s=0.3, retries=3))
    assert time.monotonic() - started < 1.4
    assert len(server.chat_posts()) == 1


def test_in_flight_bound_is_shared_per_endpoint(fake_endpoint: Start) -> None:
    server = fake_endpoint(delay_s=0.15)

    async def go() -> None:
        one = OpenAIBackend(server.url, "m", max_in_flight=3)
        two = OpenAIBackend(server.url, "m", max_in_flight=3)
        await asyncio.gather(*(b.generate(ask()) for b in [one, two] * 6))
        await one.aclose()
        await two.aclose()

    asyncio.run(go())
    assert len(server.chat_posts()) == 12
    assert server.peak_in_flight == 3


def test_request_headers_reach_the_server(fake_endpoint: Start) -> None:
    server = fake_endpoint()
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    async def go() -> None:
        backend = OpenAIBackend(server.url, "m")
        token = request_headers.set({"traceparent": parent})
        try:
            await backend.generate(ask())
        finally:
            request_headers.reset(token)
        await backend.generate(ask())
        token = request_headers.set({"traceparent": ""})  # no current span
        try:
            await backend.generate(ask())
        finally:
            request_headers.reset(token)
        await backend.aclose()

    asyncio.run(go())
    first, second, third = server.chat_posts()
    assert first["headers"]["traceparent"] == parent
    assert "traceparent" not in second["headers"]
    assert "traceparent" not in third["headers"]


def test_registry_builds_openai_backends(fake_endpoint: Start) -> None:
    server = fake_endpoint()
    backend = create_backend(f"openai:{server.url}", model_name="m", sim_options=None)
    assert isinstance(backend, OpenAIBackend)
    assert backend.model_name == "m"
    with pytest.raises(ModelError, match="give a base URL"):
        create_backend("openai:localhost")


@pytest.mark.vllm
class TestRealServer:
    def test_completes_with_usage_and_length_reason(self, vllm_server: Any) -> None:
        backend = OpenAIBackend(vllm_server.url)
        completion = generate(backend, ask("List three uses of a paperclip.", max_tokens=8))
        assert backend.model_name == vllm_server.model_name == "SmolLM2-135M-Instruct"
        assert completion.text.strip()
        assert completion.usage.completion_tokens == 8
        assert completion.finish_reason == "length"
        assert completion.usage.prompt_tokens <= backend.estimate_prompt_tokens(ask())
        assert completion.model == "openai:SmolLM2-135M-Instruct"

    def test_stop_string_ends_with_stop(self, vllm_server: Any) -> None:
        request = ask("Count from 1 to 20, one number a line.", max_tokens=100, stop=("\n",))
        completion = generate(OpenAIBackend(vllm_server.url), request)
        assert completion.finish_reason == "stop"
        assert "\n" not in completion.text
        assert completion.usage.completion_tokens < 100

    def test_same_seed_same_text(self, vllm_server: Any) -> None:
        request = ask("Invent a name for a paperclip factory.", max_tokens=24, seed=1234)
        first = generate(OpenAIBackend(vllm_server.url), request)
        second = generate(OpenAIBackend(vllm_server.url), request)
        assert first.text == second.text

    def test_concurrent_calls_and_traceparent(self, vllm_server: Any) -> None:
        parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

        async def go() -> list[Any]:
            backend = OpenAIBackend(vllm_server.url, vllm_server.model_name, max_in_flight=8)
            token = request_headers.set({"traceparent": parent})
            try:
                return await asyncio.gather(
                    *(backend.generate(ask(f"Idea {i}?", max_tokens=12, seed=i)) for i in range(12))
                )
            finally:
                request_headers.reset(token)
                await backend.aclose()

        completions = asyncio.run(go())
        assert all(c.usage.completion_tokens > 0 for c in completions)

    def test_prompt_over_the_context_is_a_clear_error(self, vllm_server: Any) -> None:
        request = ask("paperclip " * 3000, max_tokens=16)
        with pytest.raises(ModelError, match=rf"model endpoint {vllm_server.url}: HTTP 400"):
            generate(OpenAIBackend(vllm_server.url), request)


# Anything a server may put in an answer: JSON values of any shape where the fields go.
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.just("x\ud800y"),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    content=_JSON | st.just("y" * 9000) | st.just([{"type": "text", "text": "part"}]),
    usage=_JSON
    | st.fixed_dictionaries(
        {"prompt_tokens": _JSON | st.integers(), "completion_tokens": _JSON | st.integers()}
    ),
    served=_JSON | st.just("m" * 300),
    reason=_JSON,
)
def test_any_answer_body_is_a_bounded_completion(
    content: Any, usage: Any, served: Any, reason: Any
) -> None:
    # A server's answer is read into a completion within the lab's bounds, whatever its fields
    # hold: token counts a cap can charge, text of bounded size and valid Unicode, a short name.
    # Before: a non-object usage raised AttributeError, a lone surrogate reached the record,
    # 10**30 tokens went to the caps, a 300-character model name to every span.
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "fake-model")
    body = {
        "choices": [{"message": {"content": content}, "finish_reason": reason}],
        "usage": usage,
        "model": served,
    }
    got = backend._completion(body, "fake-model", ask(max_tokens=16), 0.1)
    assert 0 <= got.usage.prompt_tokens <= MAX_REPORTED_TOKENS
    assert 0 <= got.usage.completion_tokens <= MAX_REPORTED_TOKENS
    assert len(got.text) <= 4096
    got.text.encode("utf-8")  # valid Unicode: it goes into the record
    assert len(got.model) <= len("openai:") + 200
    got.model.encode("utf-8")
    assert got.finish_reason in ("stop", "length")


def test_an_answer_in_parts_is_their_text() -> None:
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "fake-model")
    parts = [{"type": "text", "text": "print("}, {"type": "image"}, {"type": "text", "text": "1)"}]
    body = {"choices": [{"message": {"content": parts}}], "model": "served"}
    got = backend._completion(body, "fake-model", ask(), 0.1)
    assert (got.text, got.model) == ("print(1)", "openai:served")
