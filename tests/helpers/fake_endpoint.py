"""A scripted OpenAI-compatible HTTP server on 127.0.0.1: it answers from a script and records
every request, so tests can check what the lab sent (and what it did with odd answers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A scripted response: (status, headers, body) or a callable answering the request.
Reply = tuple[int, dict[str, str], Any]


@dataclass
class FakeEndpoint:
    """An OpenAI-shaped HTTP server on 127.0.0.1 that answers from a script."""

    script: list[Reply] = field(default_factory=list)
    default: Reply | None = None
    text: str = "hello"
    finish_reason: str = "stop"
    delay_s: float = 0.0
    models: list[str] = field(default_factory=lambda: ["fake-model"])
    seen: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    stop_after: int | None = None
    """Go away (stop listening: connections are refused) once this many chats were answered."""
    stop: Any = None
    gone: bool = False
    hold: threading.Event | None = None
    """When set to an Event, chats are answered only once it is set (or after 60 s)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def chat_posts(self) -> list[dict[str, Any]]:
        return [s for s in self.seen if s["path"] == "/v1/chat/completions"]


def completion_body(text: str = "hello", reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def _handler(endpoint: FakeEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _answer(self) -> None:
            if endpoint.gone:  # hang up without an answer until the socket is closed
                self.close_connection = True
                return
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            with endpoint.lock:
                endpoint.in_flight += 1
                endpoint.peak_in_flight = max(endpoint.peak_in_flight, endpoint.in_flight)
                endpoint.seen.append(
                    {
                        "t": time.monotonic(),
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": json.loads(raw) if raw else None,
                    }
                )
                if self.path.endswith("/models"):
                    reply: Reply = (200, {}, {"data": [{"id": m} for m in endpoint.models]})
                elif endpoint.script:
                    reply = endpoint.script.pop(0)
                else:
                    ok = completion_body(endpoint.text, endpoint.finish_reason)
                    reply = endpoint.default or (200, {}, ok)
            try:
                if endpoint.hold is not None and not self.path.endswith("/models"):
                    endpoint.hold.wait(60)
                if endpoint.delay_s and not self.path.endswith("/models"):
                    time.sleep(endpoint.delay_s)
                status, headers, body = reply
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with endpoint.lock:
                    endpoint.in_flight -= 1
                    answered = len(endpoint.chat_posts())
                if endpoint.stop_after is not None and answered >= endpoint.stop_after:
                    endpoint.stop()

        do_GET = _answer
        do_POST = _answer

    return Handler


@contextmanager
def serving(**options: Any) -> Iterator[FakeEndpoint]:
    """A scripted endpoint for the duration of a `with` block."""
    endpoint = FakeEndpoint(**options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(endpoint))
    server.daemon_threads = True
    endpoint.port = int(server.server_address[1])

    def stop() -> None:
        if not endpoint.gone:
            endpoint.gone = True

            def close() -> None:
                server.shutdown()
                server.socket.close()  # from now on, connections are refused

            threading.Thread(target=close, daemon=True).start()

    endpoint.stop = stop
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield endpoint
    finally:
        if not endpoint.gone:
            server.shutdown()
        server.server_close()
