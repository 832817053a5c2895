"""A warm start: a local Ray and a private Redis kept running between commands.

`swarmlab up` starts them and writes what it started (addresses, process ids, Ray's temp dir)
into the lab's state dir (`$SWARMLAB_STATE_DIR/warm/`); `swarmlab run` and `swarmlab sweep`
without `--ray-address`/`--redis-url` then use them, so a run skips the seconds Ray and Redis take
to start. `swarmlab down` stops them by process id. A state file whose processes are gone (a
reboot, a kill) is stale: it is detected, what is left of it is stopped, and it is removed.
Each run keeps its own Redis key namespace (`swarmlab:run:<run id>:`) and its own run directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swarmlab.core import MAX_SMALL_BYTES, ClusterError, SwarmlabError, read_json, write_text
from swarmlab.spec import state_root as spec_state_root

from ._ray_procs import is_ray_process, ray_binary, ray_pids
from ._reaper import environ_pids, pid_alive
from ._redis import PORT_ATTEMPTS, RedisServer, free_port, port_taken

WARM_REDIS_BYTES = 2 << 30
"""`maxmemory` of the warm Redis: every run on it shares this bound (noeviction: fail closed)."""
STOP_GRACE_S = 5.0
PRELOAD = "swarmlab.runtime._runner"
"""What the warm Ray's workers import on start: a run's runner actors skip those seconds."""


class WarmState(BaseModel):
    """The state file `up` writes: what `run` connects to and what `down` stops."""

    model_config = ConfigDict(extra="forbid")

    redis_url: str = Field(description="The warm Redis.")
    redis_pid: int = Field(ge=1, le=2**22, description="The redis-server's process id.")
    ray_address: str = Field(description="The warm Ray's GCS address (host:port).")
    ray_temp_dir: str = Field(description="Ray's temp dir as its processes name it.")
    ray_pids: list[int] = Field(description="Ray's processes when `up` returned.")
    ray_token_path: str = Field(description="The warm Ray's own authentication token (0600).")
    started_at: float = Field(description="When `up` started them (Unix time).")


def state_root() -> Path:
    """The lab's state dir: $SWARMLAB_STATE_DIR, else $XDG_STATE_HOME/swarmlab (~/.local/state)."""
    return spec_state_root()


def warm_dir() -> Path:
    return state_root() / "warm"


def _state_file() -> Path:
    path = warm_dir() / "warm.json"
    if path.is_dir() and not path.is_symlink():  # not ours to remove: say so, and how
        raise ClusterError(
            f"{path} is a directory where the warm instance's state file goes; remove it "
            f"(rm -r {path}) and run the command again"
        )
    return path


def _read_state() -> WarmState | None:
    path = _state_file()
    if not path.is_file():
        return None
    try:
        return WarmState.model_validate(read_json(path, max_bytes=MAX_SMALL_BYTES))
    except (SwarmlabError, ValidationError):
        return None


def _is_redis(pid: int) -> bool:
    """Whether process `pid` is a redis-server (its program, not any word of its arguments)."""
    try:
        first = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].split()
    except OSError:
        return False
    return bool(first) and Path(first[0].decode(errors="replace")).name == "redis-server"


def _is_alive(state: WarmState) -> bool:
    """Both still there, and still ours (a reused process id names someone else's process)."""
    gcs = [p for p in state.ray_pids if ray_binary(p) == "gcs_server"]
    return _is_redis(state.redis_pid) and any(pid_alive(p) for p in gcs)


def warm_instance() -> WarmState | None:
    """The running warm Ray and Redis, or None (nothing up, or only a stale state file)."""
    state = _read_state()
    return state if state is not None and _is_alive(state) else None


@dataclass
class WarmUp:
    state: WarmState
    already_up: bool = False
    stale_cleaned: list[int] = field(default_factory=list)
    """Processes of a stale instance stopped before starting afresh."""
    took_s: float = 0.0


def warm_up(num_cpus: int | None = None) -> WarmUp:
    """Start a warm Ray and Redis, unless they are up already (then nothing changes)."""
    begun = time.monotonic()
    if (current := warm_instance()) is not None:
        return WarmUp(current, already_up=True)
    stale = _stop(_read_state()) if _state_file().exists() else []
    _state_file().unlink(missing_ok=True)
    home = warm_dir()
    home.mkdir(parents=True, exist_ok=True)
    redis_server = RedisServer(home / "redis", maxmemory=WARM_REDIS_BYTES, outlive_parent=True)
    redis_server.start()
    assert redis_server.pid is not None
    try:
        token = _write_token(home / "ray_auth_token")
        temp_dir, address = _start_ray(home / "ray", num_cpus, token)
    except ClusterError:
        redis_server.stop()
        raise
    state = WarmState(
        redis_url=redis_server.url,
        redis_pid=redis_server.pid,
        ray_address=address,
        ray_temp_dir=temp_dir,
        ray_pids=ray_pids([temp_dir]),
        ray_token_path=str(token),
        started_at=time.time(),
    )
    write_text(_state_file(), state.model_dump_json())
    return WarmUp(state, stale_cleaned=stale, took_s=time.monotonic() - begun)


def warm_down() -> tuple[bool, list[int]]:
    """Stop the warm instance (or what is left of a stale one, or remove a state file that is
    not one): whether there was a state file, and the processes stopped."""
    existed = _state_file().exists()
    stopped = _stop(_read_state())
    _state_file().unlink(missing_ok=True)
    return existed, stopped


def _short_temp_dir(target: Path) -> str:
    """Ray's socket paths must stay short: a link in the system temp dir names the state dir."""
    target.mkdir(parents=True, exist_ok=True)
    link = Path(_link_for(target))
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.resolve())
    return str(link)


def _link_for(target: Path) -> str:
    tag = hashlib.sha1(str(target.resolve()).encode()).hexdigest()[:10]
    return str(Path(tempfile.gettempdir()) / f"swlw-{tag}")


def _write_token(path: Path) -> Path:
    """A token of the warm Ray's own, readable by this user only (never through a symlink)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path


def _start_ray(target: Path, num_cpus: int | None, token: Path) -> tuple[str, str]:
    """Start the warm Ray head on a free port. A port found free can be taken by another process
    before Ray binds it (Ray then fails rather than pick another): such a start is made again on
    another port, PORT_ATTEMPTS in all."""
    temp_dir = _short_temp_dir(target)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        done = _ray_start(temp_dir, port, num_cpus, token)
        if done.returncode == 0:
            return temp_dir, f"127.0.0.1:{port}"
        with contextlib.suppress(ProcessLookupError, PermissionError):
            _kill_all(ray_pids([temp_dir]))
        output = (done.stderr or "") + (done.stdout or "")
        if not port_taken(output + _gcs_errors(temp_dir)) or attempt == PORT_ATTEMPTS:
            last = (done.stderr or done.stdout).strip().split("\n")[-1:]
            raise ClusterError(f"could not start a warm Ray: {' '.join(last)[:300]}")
    raise AssertionError("unreachable")


def _ray_start(
    temp_dir: str, port: int, num_cpus: int | None, token: Path
) -> subprocess.CompletedProcess[str]:
    ray = Path(sys.executable).with_name("ray")
    command = [
        str(ray),
        "start",
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={temp_dir}",
        f"--num-cpus={num_cpus if num_cpus is not None else os.cpu_count()}",
        "--include-dashboard=false",
        "--disable-usage-stats",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    # Every worker process imports the runner's modules when it starts, before a run asks for it.
    env.setdefault("RAY_preload_python_modules", PRELOAD)
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=env
    )


def _gcs_errors(temp_dir: str) -> str:
    """The newest session's GCS error log, where Ray says a port was in use."""
    sessions = sorted(Path(temp_dir).glob("session_2*"))
    if not sessions:
        return ""
    try:
        with (sessions[-1] / "logs" / "gcs_server.err").open("rb") as handle:
            return handle.read(64 * 1024).decode(errors="replace")
    except OSError:
        return ""


def _stop(state: WarmState | None) -> list[int]:
    """Stop, by process id, what this state dir started: Ray's processes (those started on its
    temp dir, which they name as an option's value; those that never name it, such as its
    client server and its renamed workers, found by the token the warm Ray was started with; its
    agents, which rename themselves, by the raylet they were started for) and the redis-server.

    Only Ray's own programs count (`_ray_procs`): a user's `tail -F` of the warm Ray's logs, or
    a shell that exported its token path, holds the same text and is left alone. The state file
    is read back, so it is not trusted to say which processes are ours: the temp dir and the
    token are the ones this state dir's `up` gives Ray, and the redis-server counts only when it
    runs in this state dir's Redis dir. A state file that names other processes stops none of
    them."""
    if state is None:
        return []
    home = warm_dir()
    temp_dir = _link_for(home / "ray")
    ours = set(ray_pids([temp_dir]))
    ours |= _own(f"RAY_AUTH_TOKEN_PATH={home / 'ray_auth_token'}")
    for raylet in [p for p in ours if ray_binary(p) == "raylet"]:  # its agents, by their parent
        ours |= _own(f"RAY_RAYLET_PID={raylet}")
    if _is_redis(state.redis_pid) and _runs_in(state.redis_pid, home / "redis"):
        ours.add(state.redis_pid)
    _kill_all(sorted(ours))
    with contextlib.suppress(OSError):
        link = Path(temp_dir)
        if link.is_symlink():
            link.unlink()
    return sorted(ours)


def _own(entry: str) -> set[int]:
    """Ray's own processes started with `entry` in their environment."""
    return {p for p in environ_pids(entry) if is_ray_process(p)}


def _runs_in(pid: int, directory: Path) -> bool:
    """Whether process `pid`'s working directory is `directory` (a redis-server works in its
    `--dir`)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == directory.resolve()
    except OSError:
        return False


def _kill_all(pids: list[int]) -> None:
    """SIGTERM, up to a grace for them to end, then SIGKILL for the rest."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        give_up = time.monotonic() + STOP_GRACE_S
        while not all(_gone(p) for p in pids) and time.monotonic() < give_up:
            time.sleep(0.05)
        if all(_gone(p) for p in pids):
            return


def _gone(pid: int) -> bool:
    """Ended: no such process, or one that only waits for its parent to collect it."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    if not pid_alive(pid):
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[:1] == ["Z"]


_COUNT_FROM: list[float] = []


def count_age_from(boot_s: float | None) -> None:
    """`process_age_s` counts from `boot_s` (CLOCK_BOOTTIME) instead of this process's start:
    the warm lab process runs a command for a client, whose start is what the user waited from
    (None: back to this process's own)."""
    _COUNT_FROM[:] = [] if boot_s is None else [boot_s]


def age_counted_for_a_client() -> bool:
    return bool(_COUNT_FROM)


def process_age_s() -> float:
    """Seconds since this process started (Linux: from /proc; elsewhere 0), or since the
    client's start that `count_age_from` set."""
    if _COUNT_FROM:
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - _COUNT_FROM[0])
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError):
        return 0.0
