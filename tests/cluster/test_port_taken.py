"""A port found free can be taken by another process before the server started for it binds it.
Every server the lab starts on a free port it picked (the private redis-server, the warm Ray head)
starts again on another port when that happens, and says so in one line when it keeps happening.
The ports here are taken by a listening socket the test holds."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from swarmlab.cluster import RedisServer
from swarmlab.cluster import _redis as redis_module
from swarmlab.cluster import _warm as warm_module
from swarmlab.cluster._ray_procs import ray_binary, ray_pids
from swarmlab.core import ClusterError, ModelError
from swarmlab.models import _vllm as vllm_module
from swarmlab.models._vllm import VLLMServer, VLLMServerConfig


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port a socket of this test listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _taken_first(held: int, times: int) -> Callable[[str], int]:
    """A free_port that hands out the held port `times` times, then free ones."""
    handed: list[int] = []
    real = redis_module.free_port

    def free_port(host: str = "127.0.0.1") -> int:
        if len(handed) < times:
            handed.append(held)
            return held
        return real(host)

    return free_port


def test_redis_server_starts_on_another_port_when_its_port_is_taken(
    tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_module, "free_port", _taken_first(held_port, 2))
    with RedisServer(tmp_path / "redis") as server:
        assert server.port != held_port
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.close()
    assert (tmp_path / "redis" / "redis.log").read_text().count("Address already in use") == 2


def test_redis_server_whose_port_is_always_taken_fails_in_one_line(
    tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_module, "free_port", _taken_first(held_port, 100))
    server = RedisServer(tmp_path / "redis")
    with pytest.raises(ClusterError) as raised:
        server.start()
    message = str(raised.value)
    assert "\n" not in message
    assert "port taken 3 times" in message
    assert "redis.log" in message
    assert server.process is None or server.process.poll() is not None


def test_another_redis_server_on_the_port_is_not_taken_for_the_one_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port's holder answers as Redis does; the server the lab started is still the one it
    waits for, so the run never talks to someone else's Redis."""
    with RedisServer(tmp_path / "other") as other:
        monkeypatch.setattr(redis_module, "free_port", _taken_first(other.port, 1))
        with RedisServer(tmp_path / "ours") as ours:
            assert ours.port != other.port
            assert ours.process is not None
            client = redis.Redis.from_url(ours.url)
            assert client.info("server")["process_id"] == ours.process.pid
            client.close()


FAKE_VLLM = """#!{python}
import http.server, json, socket, sys
args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
name = args[args.index("--served-model-name") + 1]
print("loading the model", flush=True)
sock = socket.socket()
try:
    sock.bind(("127.0.0.1", port))
except OSError as exc:
    print(f"OSError: {{exc}}", flush=True)
    sys.exit(1)
sock.close()


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"data": [{{"id": name}}]}}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Answer).serve_forever()
"""


def test_vllm_started_on_a_picked_port_starts_again_when_the_port_is_taken(
    tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "python"
    fake.write_text(FAKE_VLLM.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setattr(vllm_module, "free_port", _taken_first(held_port, 1))
    notes: list[str] = []
    config = VLLMServerConfig(model="m", device="cpu", python=str(fake))
    server = VLLMServer(config, on_progress=lambda _elapsed, line: notes.append(line))
    with server:
        assert server.config.port != held_port
        assert server.running()
    assert any(f"port {held_port} was taken" in n for n in notes), notes


def test_vllm_whose_port_is_always_taken_fails_in_one_line(
    tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "python"
    fake.write_text(FAKE_VLLM.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setattr(vllm_module, "free_port", _taken_first(held_port, 100))
    config = VLLMServerConfig(model="m", device="cpu", python=str(fake))
    server = VLLMServer(config, on_progress=None)
    with pytest.raises(ModelError, match=r"^vLLM found its port taken 3 times; pass a port"):
        server.start()
    assert server.process is None


@pytest.mark.slow
def test_warm_ray_head_starts_on_another_port_when_its_port_is_taken(
    tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warm_module, "free_port", _taken_first(held_port, 1))
    token = warm_module._write_token(tmp_path / "token")
    target = tmp_path / "ray"
    temp_dir = warm_module._link_for(target)
    try:
        _, address = warm_module._start_ray(target, 1, token)
        assert address.startswith("127.0.0.1:")
        assert address != f"127.0.0.1:{held_port}"
        assert any(ray_binary(p) == "raylet" for p in ray_pids([temp_dir]))
    finally:
        warm_module._kill_all(ray_pids([temp_dir]))
        Path(temp_dir).unlink(missing_ok=True)
