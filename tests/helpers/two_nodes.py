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
from collections.abc import Callable, Iterator
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
    """The head's GCS address (host:port), set when the head is started."""
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
                timeout=30,
            )
        except subprocess.TimeoutExpired:  # a head still starting (a busy host): not up yet
            return 0
        lines = done.stdout.strip().split("\n")
        return int(lines[-1]) if done.returncode == 0 and lines[-1].isdigit() else 0


ATTEMPTS = 3
"""Starts of one node, each on fresh ports: a port found free can be taken by another process
before Ray binds it, and Ray then hangs or fails rather than pick another."""


@contextmanager
def two_nodes(log_dir: Path) -> Iterator[TwoNodes]:
    temp = Path(tempfile.mkdtemp(prefix="swl2-", dir="/tmp"))  # Ray's socket paths must be short
    cluster = TwoNodes("", secrets.token_hex(16), temp)
    taken: set[int] = set()
    procs: list[subprocess.Popen[bytes]] = []
    try:

        def head() -> list[str]:
            cluster.address = f"127.0.0.1:{_fresh(taken)}"
            port = cluster.address.rsplit(":", 1)[1]
            flags = ["--head", f"--port={port}", "--include-dashboard=false", "--num-cpus=1"]
            return [*flags, f"--ray-client-server-port={_fresh(taken)}"]

        def second() -> list[str]:
            return [f"--address={cluster.address}", "--num-cpus=1"]

        procs.append(_start_until_up(cluster, head, taken, log_dir / "head.log", 1))
        procs.append(_start_until_up(cluster, second, taken, log_dir / "node2.log", 2))
        yield cluster
    finally:
        for proc in reversed(procs):
            _stop(proc)
        _kill_marked(str(temp))  # what left the process groups, by the temp dir
        shutil.rmtree(temp, ignore_errors=True)


def _start_until_up(
    cluster: TwoNodes,
    flags: Callable[[], list[str]],
    taken: set[int],
    log: Path,
    nodes: int,
) -> subprocess.Popen[bytes]:
    """Start a node and wait until the cluster has `nodes` alive; a start that exits or does not
    come up in a minute is stopped and made again on fresh ports. Failing every attempt, the
    error carries the end of each attempt's log."""
    what = "the head" if nodes == 1 else "the second node"
    seen = []
    for attempt in range(1, ATTEMPTS + 1):
        attempt_log = log.with_suffix(f".{attempt}.log")
        proc = _start(cluster, flags(), taken, attempt_log)
        give_up = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < give_up:
            if cluster.alive_nodes() >= nodes:
                return proc
            time.sleep(0.5)
        ended = "not up in 60 s" if proc.poll() is None else f"exited {proc.returncode}"
        _stop(proc)
        cluster.node_ports.pop()
        if nodes == 1:  # nothing else runs yet: what left the head's group goes too
            _kill_marked(str(cluster.temp))
        seen.append(f"attempt {attempt} ({ended}):\n{attempt_log.read_text()[-1500:]}")
    raise TimeoutError(f"{what} did not come up in {ATTEMPTS} attempts\n" + "\n".join(seen))


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


def _kill_marked(marker: str) -> None:
    for pid in _pids_with(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


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
