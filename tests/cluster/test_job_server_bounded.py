"""Every request `submit`, `fetch` and `status` make of a job server is bounded in time and its
answer in size: the server is read back as hostile, like every value the lab reads.

The class: Ray's job client sets no timeout and reads a whole answer into memory. A server that
never answered held the command for ever; one whose answer never ended grew it without bound.
Each way in (the client's own version check, a job's status, info, submission and deletion)
goes through one bounded request, and each misbehaviour of the server below ends in one line.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cluster._jobs as jobs
from cluster._jobs import JobServer
from swarmlab.core import ClusterError

VERSION = json.dumps({"ray_version": "2.60.0", "version": "4", "session_name": "s"}).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    misbehaviour = "silent"  # for every path but the version's when `versioned`
    versioned = False

    def _answer(self) -> None:
        if self.versioned and self.path.startswith("/api/version"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(VERSION)))
            self.end_headers()
            self.wfile.write(VERSION)
            return
        try:
            if self.misbehaviour == "silent":  # never a byte back
                time.sleep(5)
            elif self.misbehaviour == "headers only":  # the body never comes
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                time.sleep(5)
            elif self.misbehaviour == "endless":  # a body without end
                self.send_response(200)
                self.end_headers()
                chunk = b"[" * 65536
                while True:
                    self.wfile.write(chunk)
        except OSError:
            pass  # the client gave up

    do_GET = do_POST = do_DELETE = do_PUT = _answer

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def address(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(jobs, "READ_TIMEOUT_S", 0.5)
    monkeypatch.setattr(jobs, "MAX_ANSWER_BYTES", 1 << 20)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


MISBEHAVIOURS = ["silent", "headers only", "endless"]
CALLS: dict[str, Callable[[JobServer], object]] = {
    "status": lambda server: server.status("j1"),
    "exists": lambda server: server.exists("j1"),
    "submit": lambda server: server.submit("true", submission_id="j1", runtime_env={}, metadata={}),
}


def _one_line_within(call: Callable[[], object], seconds: float) -> str:
    began = time.monotonic()
    with pytest.raises(ClusterError) as caught:
        call()
    assert time.monotonic() - began < seconds
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
def test_a_server_that_misbehaves_at_once_is_refused_in_one_line(
    address: str, misbehaviour: str
) -> None:
    _Handler.misbehaviour, _Handler.versioned = misbehaviour, False
    message = _one_line_within(lambda: JobServer(address), 10)
    assert message.startswith(f"no usable Ray job server at {address}: ")


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_request_of_a_job_is_bounded(address: str, misbehaviour: str, call: str) -> None:
    _Handler.misbehaviour, _Handler.versioned = "silent", True
    server = JobServer(address)  # the version check passes
    _Handler.misbehaviour = misbehaviour
    message = _one_line_within(lambda: CALLS[call](server), 30)
    if misbehaviour == "endless":
        assert "larger than 1048576 bytes" in message


def test_an_answer_that_breaks_off_is_asked_again_as_a_dropped_connection(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Headers, part of the body, then nothing: like a connection dropped mid-answer, which
    # `status` asks again for a while (here 2 s) before it gives up, in one line.
    monkeypatch.setattr(jobs, "RETRY_EVERY_S", 0.2)
    _Handler.misbehaviour, _Handler.versioned = "silent", True
    server = JobServer(address)
    _Handler.misbehaviour = "headers only"
    asked = []
    plain = jobs._retrying

    def counted(
        call: Callable[[], object], transient: Callable[[Exception], bool], _: float
    ) -> object:
        def once() -> object:
            asked.append(1)
            return call()

        return plain(once, transient, 2.0)

    monkeypatch.setattr(jobs, "_retrying", counted)
    message = _one_line_within(lambda: server.status("j1"), 30)
    assert message.startswith(f"lost the job server at {address}: ")
    assert "broke off" in message
    assert len(asked) > 1


class _Failing:
    """A job client whose every look-up fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_job_info(self, job_id: str) -> object:
        raise self.error


def _looked_up(error: Exception) -> bool:
    server = JobServer.__new__(JobServer)
    server.address, server._client = "http://127.0.0.1:40411", _Failing(error)
    return server.exists("j1")


@settings(max_examples=200, deadline=None)
@given(status=st.integers(100, 599), text=st.text(max_size=80), port=st.integers(1, 65535))
def test_only_a_404_answer_says_that_a_job_does_not_exist(
    status: int, text: str, port: int
) -> None:
    """`exists` said False for any failure whose text held "404" or "does not exist": a job
    server at port 40411 that broke off its answer was a job that did not exist (seen in CI)."""
    said = f"Request failed with status code {status}: {text} http://h:{port} 404 does not exist."
    if status == 404:
        assert _looked_up(RuntimeError(said)) is False
    else:
        with pytest.raises(ClusterError):
            _looked_up(RuntimeError(said))


def test_a_dropped_answer_from_a_port_with_404_in_it_is_no_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests

    monkeypatch.setattr(jobs, "_retrying", lambda call, transient, give_up_after: call())
    dropped = requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=40411): Read timed out. (404 does not exist)"
    )
    with pytest.raises(ClusterError):
        _looked_up(dropped)
