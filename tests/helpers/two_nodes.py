"""A Ray cluster of two nodes on loopback, with token authentication, as a cluster runs it: a
head and a second node, each with its own raylet and free ports, both offering the runner
resource. Used by the node-loss test; everything it starts is stopped by process group and by
its temp dir."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from helpers.cli import CLUSTER_ENV
from helpers.ray_head import RAY_PORT_FLAGS
from swarmlab.cluster import free_port

RUNNER_RESOURCE = "sandbox_runner"
NODE_PORT_FLAGS = tuple(f for f in RAY_PORT_FLAGS if f not in ("port", "ray-client-server-port"))
"""The ports every node opens (the head's own two left out), each pinned to a free one."""


@dataclass
class TwoNodes:
    address: str
    """The head's GCS address (host:port)."""
    token: str
    temp: Path
    node_ports: list[int] = field(default_factory=list)
    """The node manager port of each node: the head's, then the second's."""

    def env(self) -> dict[str, str]:
        """What a driver needs to join the cluster and place runners on its runner nodes."""
        base = {k: v for k, v in os.environ.items() if k not in CLUSTER_ENV}
        bin_dir = Path(sys.executable).parent
        return base | {
            "PATH": f"{bin_dir}:{base.get('PATH', '')}",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
            "SWARMLAB_RUNNER_RESOURCE": RUNNER_RESOURCE,
        }

    def raylet(self, node: int) -> int | None:
        """The pid of a node's raylet (0: the head, 1: the second node)."""
        mark = f"--node_manager_port={self.node_ports[node]}"
        for pid in _pids_with(str(self.temp)):
            line = _cmdline(pid)
            if "raylet" in line.split(" ", 1)[0] and mark in line:
                return pid
        return None

    def alive_nodes(self) -> int:
        probe = (
            "import logging, ray\n"
            f"ray.init(address={self.address!r}, logging_level=logging.ERROR,"
            " log_to_driver=False)\n"
            "print(sum(1 for n in ray.nodes() if n['Alive']))\n"
        )
        try:
            done = subprocess.run(
                [sys.executable, "-c", probe],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:  # a head still starting (a busy host): not up yet
            return 0
        lines = done.stdout.strip().split("\n")
        return int(lines[-1]) if done.returncode == 0 and lines[-1].isdigit() else 0


@contextmanager
def two_nodes(log_dir: Path) -> Iterator[TwoNodes]:
    temp = Path(tempfile.mkdtemp(prefix="swl2-", dir="/tmp"))  # Ray's socket paths must be short
    gcs = free_port()
    cluster = TwoNodes(f"127.0.0.1:{gcs}", secrets.token_hex(16), temp)
    taken = {gcs}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        head = ["--head", f"--port={gcs}", "--include-dashboard=false", "--num-cpus=1"]
        head.append(f"--ray-client-server-port={_fresh(taken)}")
        procs.append(_start(cluster, head, taken, log_dir / "head.log"))
        _until(lambda: cluster.alive_nodes() >= 1, 90, "the head")
        procs.append(
            _start(
                cluster,
                [f"--address={cluster.address}", "--num-cpus=1"],
                taken,
                log_dir / "node2.log",
            )
        )
        _until(lambda: cluster.alive_nodes() >= 2, 90, "the second node")
        yield cluster
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for pid in _pids_with(str(temp)):  # what left the process groups, by the temp dir
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def _start(
    cluster: TwoNodes, flags: list[str], taken: set[int], log: Path
) -> subprocess.Popen[bytes]:
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "ray"), "start", "--block", f"--temp-dir={cluster.temp}", *flags]
    command += ["--node-ip-address=127.0.0.1", f'--resources={{"{RUNNER_RESOURCE}": 100}}']
    ports = {flag: _fresh(taken) for flag in NODE_PORT_FLAGS}
    command += [f"--{flag}={port}" for flag, port in ports.items()]
    # Worker ports: a range of their own for each node (Ray skips ports in use within it).
    first = random.randrange(20_000, 60_000, 200)
    command += [f"--min-worker-port={first}", f"--max-worker-port={first + 199}"]
    cluster.node_ports.append(ports["node-manager-port"])
    with log.open("wb") as out:
        return subprocess.Popen(
            command, env=cluster.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _fresh(taken: set[int]) -> int:
    """A free port not handed out yet (the OS may give the same one twice in a row)."""
    port = free_port()
    while port in taken:
        port = free_port()
    taken.add(port)
    return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _until(check: object, timeout: float, what: str) -> None:
    give_up = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > give_up:
            raise TimeoutError(f"{what} did not come up in {timeout:g} s")
        time.sleep(0.5)


def _pids_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and int(entry.name) != os.getpid()
            and marker in _cmdline(int(entry.name))
        ):
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""
