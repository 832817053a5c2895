"""A job's log, as `swarmlab submit` follows it, is read within a bound: the job server's answer
is hostile like every value the lab reads back. Before, `submit` read the whole log through
Ray's client every half second, however large it had grown."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster._jobs import MAX_LOG_BYTES, JobServer
from swarmlab.core import ClusterError


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b'{"logs": "hello\\n"}'
    repeat = 0  # times to send `filler` before the body's end
    filler = b""

    def do_GET(self) -> None:
        size = len(self.body) + len(self.filler) * self.repeat
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            self.wfile.write(self.body[:-2] if self.repeat else self.body)
            for _ in range(self.repeat):
                self.wfile.write(self.filler)
            if self.repeat:
                self.wfile.write(self.body[-2:])
        except OSError:
            pass  # the client stopped reading

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[JobServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    jobs = JobServer.__new__(JobServer)  # the log path only: no Ray client behind it
    jobs.address = f"http://127.0.0.1:{httpd.server_address[1]}"
    jobs._headers = {}
    try:
        yield jobs
    finally:
        httpd.shutdown()
        httpd.server_close()


def _serve(body: bytes, filler: bytes = b"", repeat: int = 0) -> None:
    _Handler.body, _Handler.filler, _Handler.repeat = body, filler, repeat


def test_a_log_is_read(server: JobServer) -> None:
    _serve(b'{"logs": "hello\\n"}')
    assert server.logs("j1") == "hello\n"


def test_a_log_past_the_bound_is_refused_in_one_line(server: JobServer) -> None:
    _serve(b'{"logs": "x"}', b"x" * (1 << 20), (MAX_LOG_BYTES >> 20) + 2)
    with pytest.raises(ClusterError, match=r"^job j2's log is larger than \d+ bytes$"):
        server.logs("j2")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=100)
    | st.builds(lambda n: b'{"logs":' + b"[" * n, st.integers(0, 50_000))
    | st.sampled_from([b'{"logs": 7}', b"[]", b'{"logs": "a", "logs": "b"}', b"1e999"])
)
def test_any_answer_is_a_log_or_one_line_cluster_error(server: JobServer, body: bytes) -> None:
    _serve(body)
    said = ""
    try:
        got = server.logs("j3")
    except ClusterError as exc:
        said = str(exc)
    else:
        assert isinstance(got, str)
        return
    assert "\n" not in said
    assert 0 < len(said) < 500
