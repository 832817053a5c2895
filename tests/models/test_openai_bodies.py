"""What a model server sends back is hostile: its body is read within a size and a time bound,
and whatever it holds ends as a completion or a one-line `ModelError`, never a traceback.

Before, the client read the whole body into memory (a server answering 10 GB took the runner
with it), a body nested past Python's stack raised RecursionError through the call, and a
server sending a byte now and then held the call for ever (httpx's timeout is per read)."""

from __future__ import annotations

import asyncio
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab.models import CompletionRequest, Message, ModelError
from swarmlab.models._openai import MAX_ANSWER_BYTES, OpenAIBackend
from swarmlab.models._vllm import MAX_LISTING_BYTES, endpoint_models

GOOD = b'{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"model":"m"}'


@dataclass
class Answer:
    """One scripted answer: a status, then `head`, `middle` repeated `times`, then `tail`,
    each piece `pause_s` apart (sent as it is made: a large body is never built whole)."""

    status: int = 200
    head: bytes = GOOD
    middle: bytes = b""
    times: int = 0
    tail: bytes = b""
    pause_s: float = 0.0

    def size(self) -> int:
        return len(self.head) + len(self.middle) * self.times + len(self.tail)

    def pieces(self) -> Iterator[bytes]:
        yield self.head
        for _ in range(self.times):
            yield self.middle
        yield self.tail


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    answer = Answer()


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        length = 0
        while (line := self.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        self.rfile.read(length)
        answer: Answer = self.server.answer  # type: ignore[attr-defined]
        head = (
            f"HTTP/1.1 {answer.status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {answer.size()}\r\nConnection: close\r\n\r\n"
        )
        try:
            self.wfile.write(head.encode())
            for piece in answer.pieces():
                if answer.pause_s:
                    time.sleep(answer.pause_s)
                self.wfile.write(piece)
                self.wfile.flush()
        except OSError:
            pass  # the client stopped reading: what these tests want


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _url(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/v1"


def _ask(srv: _Server, answer: Answer, timeout_s: float = 5.0) -> Any:
    srv.answer = answer
    backend = OpenAIBackend(_url(srv), "m", timeout_s=timeout_s, retries=0)
    request = CompletionRequest(messages=(Message(role="user", content="hi"),), max_tokens=8)

    async def go() -> Any:
        try:
            return await backend.generate(request)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_a_good_answer_is_read(server: _Server) -> None:
    assert _ask(server, Answer()).text == "hi"


def test_an_answer_past_the_bound_is_refused_without_reading_it_all(server: _Server) -> None:
    chunk = b" " * (1 << 20)
    big = Answer(head=b'{"choices":[', middle=chunk, times=(MAX_ANSWER_BYTES >> 20) + 64)
    began = time.monotonic()
    with pytest.raises(ModelError, match=r"larger than 32 MiB"):
        _ask(server, big)
    assert time.monotonic() - began < 30


def test_an_answer_nested_past_the_stack_is_a_model_error(server: _Server) -> None:
    deep = Answer(head=b'{"choices":' + b"[" * 200_000, tail=b"]" * 200_000 + b"}")
    with pytest.raises(ModelError, match="not a JSON object"):
        _ask(server, deep)


def test_a_trickled_answer_ends_at_the_call_timeout(server: _Server) -> None:
    slow = Answer(head=b"{", middle=b" ", times=100, tail=b"}", pause_s=0.1)
    began = time.monotonic()
    with pytest.raises(ModelError, match=r"no answer within 1 s"):
        _ask(server, slow, timeout_s=1.0)
    assert time.monotonic() - began < 5


def test_an_error_answer_is_read_in_part_for_its_message(server: _Server) -> None:
    huge = Answer(status=400, head=b'{"error":{"message":"', middle=b"x" * 65536, times=64)
    with pytest.raises(ModelError, match=r"HTTP 400 .*over 64 KiB"):
        _ask(server, huge)
    short = Answer(status=400, head=b'{"error":{"message":"bad  request\\n here"}}')
    with pytest.raises(ModelError, match=r"HTTP 400 on POST /chat/completions: bad request here$"):
        _ask(server, short)


_BODIES = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda n, c: b'{"choices":' + c * n,
        st.integers(0, 5000),
        st.sampled_from([b"[", b"{", b'{"a":']),
    ),
    st.builds(
        lambda d: b'{"choices":[{"message":{"content":' + d + b"}}]}",
        st.sampled_from([b'"x"', b"1" * 5000, b"1e999", b"NaN", b'"\\ud800"', b"[]", b"null"]),
    ),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_BODIES, status=st.sampled_from([200, 400, 404, 422]))
def test_any_body_is_a_completion_or_one_line_model_error(
    server: _Server, body: bytes, status: int
) -> None:
    got: Any = None
    failed = ""
    try:
        got = _ask(server, Answer(status=status, head=body))
    except ModelError as exc:
        failed = str(exc)
    if got is None:
        assert "\n" not in failed
        assert 0 < len(failed) < 600
        return
    assert status == 200
    assert len(got.text) <= 4096
    got.text.encode("utf-8")


def test_a_model_listing_past_its_bound_is_no_listing(server: _Server) -> None:
    # The start-up probe reads /health, then /v1/models, each within the bounds.
    listing = Answer(head=b'{"data":[', middle=b" " * 65536, times=(MAX_LISTING_BYTES >> 16) + 4)
    server.answer = listing
    assert endpoint_models(_url(server), timeout_s=5.0) is None
    server.answer = Answer(head=b'{"data":[{"id":"served"},{"id":' + b"[" * 100_000)
    assert endpoint_models(_url(server), timeout_s=5.0) is None
    server.answer = Answer(head=b'{"data":[{"id":"served"},{"id":7},{"id":"' + b"m" * 300 + b'"}]}')
    assert endpoint_models(_url(server), timeout_s=5.0) == ["served"]
