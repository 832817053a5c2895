"""A real local Ray head with its job server and token authentication, started as a cluster's
head is: its environment names the cluster's runs directory and its model server."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.cli import CLUSTER_ENV
from helpers.fake_endpoint import FakeEndpoint
from swarmlab.cluster import free_port

RAY_PORT_FLAGS = (
    "port",
    "ray-client-server-port",
    "node-manager-port",
    "object-manager-port",
    "runtime-env-agent-port",
    "dashboard-agent-grpc-port",
    "dashboard-agent-listen-port",
    "metrics-export-port",
)


@dataclass
class RayHead:
    address: str
    token: str
    runs: Path
    model: FakeEndpoint
    """The model server the head's environment names (SWARMLAB_MODEL_URL, SWARMLAB_MODEL_NAME)."""


CLUSTER_MODEL_NAME = "cluster-llm"
# What the cluster's model answers: a short program, so the run's root program comes from it.
CLUSTER_MODEL_ANSWER = (
    "Here is a program:\n```python\nlog('hello from the cluster model')\n'done'\n```\n"
)


def _stop_group(proc: subprocess.Popen[bytes], marker: str) -> None:
    """Stop `ray start --block` (it stops what it started), then anything left of its session."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own process group (start_new_session)
    for entry in Path("/proc").iterdir():  # Ray processes that left the group, by their temp dir
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass


ATTEMPTS = 3
"""Starts of the head, each on fresh ports: a port found free can be taken by another process
before Ray binds it, and Ray then hangs or fails rather than pick another."""


@contextlib.contextmanager
def started_ray_head(tmp_path: Path, cluster_model: FakeEndpoint) -> Iterator[RayHead]:
    """A real local Ray head with its dashboard (the job server) and token authentication; its
    environment names the cluster's model the way k8s/base/settings.env does on a cluster."""
    temp = Path(tempfile.mkdtemp(prefix="swlj-", dir="/tmp"))  # Ray's socket paths must be short
    token = secrets.token_hex(16)
    runs = tmp_path / "runs"
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_ENV}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_USAGE_STATS_ENABLED="0",
        SWARMLAB_RUNS_DIR=str(runs),
        SWARMLAB_MODEL_URL=cluster_model.url,
        SWARMLAB_MODEL_NAME=CLUSTER_MODEL_NAME,
    )
    seen = []
    for attempt in range(1, ATTEMPTS + 1):
        log = tmp_path / f"ray-start.{attempt}.log"
        proc, address = _start_head(temp, env, log)
        ended = _until_answering(proc, address, token)
        if ended is None:
            break
        _stop_group(proc, str(temp))
        seen.append(f"attempt {attempt} ({ended}):\n{log.read_text()[-1500:]}")
    else:
        shutil.rmtree(temp, ignore_errors=True)
        pytest.fail(f"the Ray head did not come up in {ATTEMPTS} attempts\n" + "\n".join(seen))
    try:
        yield RayHead(address, token, runs, cluster_model)
    finally:
        _stop_group(proc, str(temp))
        shutil.rmtree(temp, ignore_errors=True)


def _start_head(temp: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`ray start --head --block` with its job server, every port pinned to a free one (so that
    other Ray instances on this machine do not collide), and distinct, since the OS may hand
    the same free port out twice in a row."""
    dashboard = free_port()
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "ray"), "start", "--head", "--block", f"--temp-dir={temp}"]
    command += ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--dashboard-host=127.0.0.1"]
    command.append(f"--dashboard-port={dashboard}")
    taken = {dashboard}
    for flag in RAY_PORT_FLAGS:
        port = free_port()
        while port in taken:
            port = free_port()
        taken.add(port)
        command.append(f"--{flag}={port}")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return proc, f"http://127.0.0.1:{dashboard}"


def _until_answering(proc: subprocess.Popen[bytes], address: str, token: str) -> str | None:
    """None once the job server answers; else why this start failed (it exited, or a minute
    passed)."""
    request = urllib.request.Request(
        f"{address}/api/version", headers={"Authorization": f"Bearer {token}"}
    )
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            return f"exited {proc.returncode}"
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return None
        except OSError:
            pass
        time.sleep(0.5)
    return "not up in 60 s"
