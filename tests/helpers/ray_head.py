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


@contextlib.contextmanager
def started_ray_head(tmp_path: Path, cluster_model: FakeEndpoint) -> Iterator[RayHead]:
    """A real local Ray head with its dashboard (the job server) and token authentication; its
    environment names the cluster's model the way k8s/base/settings.env does on a cluster."""
    temp = Path(tempfile.mkdtemp(prefix="swlj-", dir="/tmp"))  # Ray's socket paths must be short
    token = secrets.token_hex(16)
    dashboard = free_port()
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
    command = [str(bin_dir / "ray"), "start", "--head", "--block", f"--temp-dir={temp}"]
    command += ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--dashboard-host=127.0.0.1"]
    command.append(f"--dashboard-port={dashboard}")
    # Free ports for everything, so that other Ray instances on this machine do not collide;
    # distinct, since the OS may hand the same free port out twice in a row.
    taken = {dashboard}
    for flag in RAY_PORT_FLAGS:
        port = free_port()
        while port in taken:
            port = free_port()
        taken.add(port)
        command.append(f"--{flag}={port}")
    log = tmp_path / "ray-start.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        address = f"http://127.0.0.1:{dashboard}"
        request = urllib.request.Request(
            f"{address}/api/version", headers={"Authorization": f"Bearer {token}"}
        )
        give_up = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ray start exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > give_up:
                pytest.fail(f"the job server did not answer in 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield RayHead(address, token, runs, cluster_model)
    finally:
        _stop_group(proc, str(temp))
        shutil.rmtree(temp, ignore_errors=True)
