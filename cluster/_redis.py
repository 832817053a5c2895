"""A private redis-server on a free loopback port, started and stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from swarmlab.core import ClusterError

INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install redis-server) or pass --redis-url"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


PORT_ATTEMPTS = 3
"""Starts of a server on a fresh free port before a taken port is an error."""


class PortTaken(Exception):
    """A server could not bind the port found free for it: another process took it first."""


def port_taken(output: str) -> bool:
    """Whether a server's output says its listening port was in use."""
    return "Address already in use" in output or "address already in use" in output


def _read_from(path: Path, offset: int, limit: int = 64 * 1024) -> str:
    """The end of what a log gained past `offset` (at most `limit` bytes)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(offset, size - limit))
            return handle.read(limit).decode(errors="replace")
    except OSError:
        return ""


def _answered_by(client: redis.Redis, pid: int) -> bool:
    """Whether the server answering on the client's port is the process started, not another
    that holds the port."""
    return int(client.info("server").get("process_id", -1)) == pid


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started us dies (Linux), so a killed
    driver never leaves its private redis-server behind."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class RedisServer:
    """`with RedisServer(workdir) as server: server.url` - no persistence, loopback only."""

    def __init__(
        self,
        workdir: Path,
        binary: str | None = None,
        maxmemory: int | None = None,
        outlive_parent: bool = False,
    ) -> None:
        """`maxmemory`: bytes the server may hold; past them it refuses writes and never evicts
        a key (`noeviction`), so a run that outgrows its bound fails closed. `outlive_parent`:
        the server keeps running when the process that started it ends (`swarmlab up`)."""
        self.workdir = Path(workdir)
        self.maxmemory = maxmemory
        self.outlive_parent = outlive_parent
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server on a free port and wait until it answers. A port found free can be
        taken by another process before redis-server binds it; such a start is made again on
        another port (PORT_ATTEMPTS in all)."""
        if not Path(self.binary).exists():
            raise ClusterError(f"redis-server not found; {INSTALL_HINT}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._start_once(timeout)
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise ClusterError(
                        f"redis-server found its port taken {PORT_ATTEMPTS} times; "
                        f"see {self.workdir / 'redis.log'}"
                    ) from None
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> RedisServer:
        self.port = free_port()
        log_path = self.workdir / "redis.log"
        logged = log_path.stat().st_size if log_path.exists() else 0
        log = open(log_path, "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--protected-mode",
                "yes",
                "--maxclients",
                "4096",
                *self._memory_options(),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if self.outlive_parent else _die_with_parent,
        )
        log.close()
        client = redis.Redis(  # each probe once: the loop is the retry
            host="127.0.0.1",
            port=self.port,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        give_up = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    if port_taken(_read_from(log_path, logged)):
                        raise PortTaken(self.port)
                    raise ClusterError(
                        f"redis-server exited with code {self.process.returncode}; see {log_path}"
                    )
                try:
                    if _answered_by(client, self.process.pid):
                        return self
                except redis.RedisError:
                    if time.monotonic() > give_up:
                        self.stop()
                        raise ClusterError(
                            f"redis-server did not answer on port {self.port} within {timeout} s"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def _memory_options(self) -> list[str]:
        if self.maxmemory is None:
            return []
        return ["--maxmemory", str(self.maxmemory), "--maxmemory-policy", "noeviction"]

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
