"""The warm lab process: `swarmlab up` keeps one, and `swarmlab run` hands its run to it.

A run started as a new process pays, before its first program, for Python's imports, a Ray
connection and its runner actors (a worker process each, and the runtime's imports in it): a few
seconds, even with `swarmlab up`'s Ray and Redis already running. The lab process pays those once:
it stays connected to the warm Ray and keeps runner actors that each run borrows (as a sweep's
cells do), released, not killed, when the run ends.

`swarmlab run` (on the warm instance: no `--ray-address`/`--redis-url`, no
`SWARMLAB_NO_WARM_SERVER`) sends its arguments, its working directory and its `SWARMLAB_*` and
`OTEL_*` environment over a Unix socket in the state dir (mode 0600); the lab process runs the
same command and sends back what it prints and its exit code. Ctrl-C (or the client going away)
interrupts the run there as it would here. One run at a time: a run that finds the process
busy, or running other code than its own (the package changed since `up`), runs the usual way.

Every request is hostile input: one line, at most `MAX_REQUEST_BYTES`, read within
`REQUEST_TIMEOUT_S`, and validated before use; only `run` is served.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

LAB_COMMAND = "lab-process"
"""The hidden command that runs the lab process."""
MAX_REQUEST_BYTES = 256 * 1024
REQUEST_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 180.0
DRAIN_S = 2.0
DRAIN_BYTES = 8 << 20
ENV_PREFIXES = ("SWARMLAB_", "OTEL_")
MAX_ENV_NAME = 256
MAX_ENV_VALUE = 32 * 1024
KEPT_ENV = ("SWARMLAB_STATE_DIR",)
"""The lab process's own, never replaced by a client's."""


class Request(BaseModel):
    """What a client sends, as one JSON line."""

    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, max_length=400)
    cwd: str = Field(max_length=4096)
    env: dict[str, str] = Field(max_length=200)
    code: str = Field(max_length=64, description="The client's package fingerprint.")
    started_boot_s: float = Field(ge=0, description="The client's start (CLOCK_BOOTTIME).")

    @field_validator("argv", "cwd")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if any("\0" in text for text in ([value] if isinstance(value, str) else value)):
            raise ValueError("a NUL character in argv or cwd")
        return value

    @field_validator("env")
    @classmethod
    def _settable(cls, env: dict[str, str]) -> dict[str, str]:
        """Only variables the process can set: checked here, never found out mid-run."""
        for key, value in env.items():
            if not key or "=" in key or "\0" in key or len(key) > MAX_ENV_NAME:
                raise ValueError(f"env: {key[:40]!r} is not a variable name")
            if "\0" in value or len(value) > MAX_ENV_VALUE:
                raise ValueError(f"env: the value of {key[:40]!r} holds a NUL or is too long")
        return env


class ServerInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pid: int = Field(ge=1, le=2**22)
    socket: str
    code: str
    instance: float = Field(description="The warm instance it serves (its `started_at`).")
    started_at: float


def code_fingerprint() -> str:
    """The installed package's files (names, sizes, modification times), hashed: a lab process
    started before the code changed must not run a newer client's command."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".lua", ".yaml", ".md") and path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _info_file(home: Path) -> Path:
    return home / "server.json"


def server_info(home: Path) -> ServerInfo | None:
    """The running lab process of the running warm instance, or None (none, one that is gone,
    or one left from an instance that is gone)."""
    from swarmlab.cluster import warm_instance

    info = _live_server(home)
    state = warm_instance() if info is not None else None
    return info if state is not None and info and state.started_at == info.instance else None


def _live_server(home: Path) -> ServerInfo | None:
    """The lab process the state dir names, if it still runs (whichever instance it serves)."""
    from swarmlab.cluster import pid_alive
    from swarmlab.core import MAX_SMALL_BYTES, SwarmlabError, read_json

    path = _info_file(home)
    if not path.is_file():
        return None
    try:
        info = ServerInfo.model_validate(read_json(path, max_bytes=MAX_SMALL_BYTES))
    except (SwarmlabError, ValidationError):
        return None
    try:
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes()
    except OSError:
        return None
    ours = {LAB_COMMAND.encode(), str(home).encode()} <= set(cmdline.split(b"\0"))
    if not pid_alive(info.pid) or not ours:
        return None  # gone, or not this state dir's lab process (the file is read back)
    return info


# --- the lab process ---------------------------------------------------------------------


class _Frames(io.TextIOBase):
    """A text stream whose writes go to the client as frames (`{"o": ...}` or `{"e": ...}`)."""

    def __init__(self, conn: socket.socket, key: str, lock: threading.Lock) -> None:
        self.conn, self.key, self.lock = conn, key, lock

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if text:
            _send(self.conn, {self.key: text}, self.lock)
        return len(text)


def _send(conn: socket.socket, frame: dict[str, Any], lock: threading.Lock) -> None:
    with lock, contextlib.suppress(OSError):
        conn.sendall(json.dumps(frame).encode() + b"\n")


def _refuse_busy(conn: socket.socket) -> None:
    _send(conn, {"busy": True}, threading.Lock())
    _drain(conn)
    with contextlib.suppress(OSError):
        conn.close()


def _drain(conn: socket.socket) -> None:
    """Read what is left of a refused request until the client closes (at most `DRAIN_BYTES`,
    within `DRAIN_S`), so that closing does not reset the connection before the client reads
    the refusal: a client still sending when it is refused (a request too long) would lose it."""
    give_up, read = time.monotonic() + DRAIN_S, 0
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        while read < DRAIN_BYTES and (left := give_up - time.monotonic()) > 0:
            conn.settimeout(left)
            chunk = conn.recv(65536)
            if not chunk:
                break
            read += len(chunk)


def _read_line(conn: socket.socket, limit: int, timeout: float) -> bytes:
    """One line (without its newline), or ValueError: too long, too slow, or cut short."""
    conn.settimeout(timeout)
    data = b""
    give_up = time.monotonic() + timeout
    while b"\n" not in data:
        if len(data) > limit or time.monotonic() > give_up:
            raise ValueError(f"a request is one line of at most {limit} bytes, within {timeout} s")
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            raise ValueError(f"no request within {timeout} s") from None
        if not chunk:
            raise ValueError("the request ended before its newline")
        data += chunk
    line = data.split(b"\n", 1)[0]
    if len(line) > limit:
        raise ValueError(f"a request is one line of at most {limit} bytes")
    return line


class LabServer:
    """Serves runs, one at a time, on a Unix socket; see the module's docstring."""

    def __init__(self, home: Path, command: Callable[[list[str]], int]) -> None:
        self.home = home
        self.command = command
        """The CLI's `main`, which runs each request's arguments."""
        self.code = code_fingerprint()
        self.fleet: list[Any] = []
        self.ray: Any = None
        self.redis_url = ""
        self.instance = 0.0
        self.interrupt: Callable[[], None] = lambda: os.kill(os.getpid(), signal.SIGINT)
        """What Ctrl-C at the client does here: Ctrl-C here, which the run handles as its own."""
        self.work: queue.Queue[socket.socket] = queue.Queue(maxsize=1)
        self.busy = threading.Event()
        self.freed = False
        """Whether the request being served has sent its last frame (and so freed `busy`)."""
        self.own_signals = False
        """Whether SIGINT is this server's to set (in the lab process; not in a test's)."""

    def prepare(self) -> None:
        """Connect to the warm Ray, import the runtime and start the default runners."""
        from swarmlab.cluster import RayCluster, warm_instance
        from swarmlab.spec import load_spec

        state = warm_instance()
        if state is None:
            raise SystemExit("swarmlab lab process: no warm Ray and Redis (run `swarmlab up`)")
        self.instance = state.started_at
        self.redis_url = state.redis_url
        self.ray = RayCluster().connect(state.ray_address, state.ray_token_path)
        import swarmlab.runtime._driver  # noqa: F401  (the run's imports, paid now)

        self.lend(load_spec("paperclips"))

    def lend(self, spec: Any) -> list[Any]:
        """Runners enough for `spec`: the same ones while runs keep that width, new ones (the
        previous ended) when a run needs another: the lab process keeps one set, never one per
        width."""
        from swarmlab.runtime import runner_fleet
        from swarmlab.runtime._program import runner_slots

        width = len(runner_slots(spec))
        if len(self.fleet) != width:  # one fleet at a time: the previous width's actors end
            for actor in self.fleet:
                self.ray.kill(actor)
            self.fleet = []  # none, if the new ones cannot start
            self.fleet = runner_fleet(self.ray, [spec], self.redis_url, 1)[0]
        return self.fleet

    def serve(self, path: Path) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path.unlink(missing_ok=True)
        old = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(old)
        listener.listen(8)
        self.own_signals = True
        _take_sigint(True, False)
        _leave_cwd(self.home)  # not where `up` ran, which may be deleted
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        info = ServerInfo(
            pid=os.getpid(),
            socket=str(path),
            code=self.code,
            instance=self.instance,
            started_at=time.time(),
        )
        from swarmlab.core import write_text

        write_text(_info_file(self.home), info.model_dump_json())
        while True:
            conn = self.work.get()
            self.serve_one(conn)

    def serve_one(self, conn: socket.socket) -> None:
        """Serve one request; whatever it raises (even `SystemExit`) ends that request only."""
        self.freed = False
        try:
            self._handle(conn)
        except KeyboardInterrupt:  # an interrupt that came as the run ended
            pass
        except (Exception, SystemExit) as exc:  # a fault ends one request, never the lab process
            print(f"swarmlab lab process: a request failed: {exc!r}", file=sys.__stderr__)
        finally:
            if not self.freed:  # once freed, `busy` may already be the next request's
                self.busy.clear()
            with contextlib.suppress(OSError):
                conn.close()

    def _last(self, conn: socket.socket, frame: dict[str, Any], lock: threading.Lock) -> None:
        """A request's last frame. The lab process is free before the client can see it, so a
        client that asks again as soon as it has its answer is served, never told `busy`."""
        self.freed = True
        self.busy.clear()
        _send(conn, frame, lock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # out of file descriptors, say: the next accept may succeed
                if listener.fileno() == -1:  # closed: no next accept
                    return
                time.sleep(0.1)
                continue
            if self.busy.is_set():
                threading.Thread(target=_refuse_busy, args=(conn,), daemon=True).start()
                continue
            self.busy.set()
            self.work.put(conn)

    def _handle(self, conn: socket.socket) -> None:
        lock = threading.Lock()
        try:
            request = Request.model_validate_json(
                _read_line(conn, MAX_REQUEST_BYTES, REQUEST_TIMEOUT_S)
            )
            if request.argv[0] != "run":
                raise ValueError(f"the lab process serves `run` only, not {request.argv[0]!r}")
            if request.code != self.code:
                self._last(conn, {"stale": True}, lock)
                return
            if not Path(request.cwd).is_dir():
                raise ValueError("the request's working directory does not exist")
        except (ValueError, ValidationError, OSError) as exc:
            self._last(conn, {"error": _line(exc)}, lock)
            _drain(conn)
            return
        _send(conn, {"accepted": True}, lock)
        try:
            code = self._run(conn, request, lock)
        except Exception as exc:  # the run could not start (its directory went since): said once
            _send(conn, {"e": f"swarmlab: the lab process could not run it: {_line(exc)}\n"}, lock)
            code = 1
        self._last(conn, {"exit": code}, lock)

    def _run(self, conn: socket.socket, request: Request, lock: threading.Lock) -> int:
        from swarmlab.cluster import count_age_from

        from . import _common

        _take_sigint(self.own_signals, True)
        run = _Going(self.interrupt)
        threading.Thread(target=_watch_client, args=(conn, run), daemon=True).start()
        saved_env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        out, err = sys.stdout, sys.stderr
        try:  # everything the run changes is undone below, whatever fails (even its cwd)
            for key in saved_env:
                if key not in KEPT_ENV:
                    del os.environ[key]
            os.environ.update(
                {
                    k: v
                    for k, v in request.env.items()
                    if k.startswith(ENV_PREFIXES) and k not in KEPT_ENV
                }
            )
            os.chdir(request.cwd)
            sys.stdout, sys.stderr = _Frames(conn, "o", lock), _Frames(conn, "e", lock)
            _common.RUNNER_LENDER = self.lend
            count_age_from(request.started_boot_s)
            try:
                return self.command(request.argv)
            except KeyboardInterrupt:
                return 1
            except SystemExit as exc:  # argparse's `--help` or a bad option: the run's exit only
                return _exit_code(exc)
        finally:
            _take_sigint(self.own_signals, False)  # a late Ctrl-C never reaches the idle process
            run.end()
            _common.RUNNER_LENDER = None
            count_age_from(None)
            sys.stdout, sys.stderr = out, err
            _leave_cwd(self.home)
            for key in [k for k in os.environ if k.startswith(ENV_PREFIXES)]:
                if key not in KEPT_ENV:
                    del os.environ[key]
            os.environ.update(saved_env)


class _Going:
    """A run as the client's watch sees it: Ctrl-C reaches the lab process only while the run is
    going (a signal sent after it ended would interrupt the idle process)."""

    def __init__(self, interrupt: Callable[[], None]) -> None:
        self._interrupt, self.lock, self.going = interrupt, threading.Lock(), True

    def interrupt(self) -> None:
        with self.lock:
            if self.going:
                self._interrupt()
                self.going = False  # once: a second would land after the run has ended

    def end(self) -> None:
        with self.lock:
            self.going = False


def _take_sigint(own: bool, during_run: bool) -> None:
    """In the lab process (`own`), SIGINT interrupts a run and is ignored between runs: one sent
    as a run ended, still pending, must not end the process."""
    if own:
        signal.signal(signal.SIGINT, signal.default_int_handler if during_run else signal.SIG_IGN)


def _leave_cwd(home: Path) -> None:
    """Back to the state dir after a run (or `/`, if that is gone): never to where the process
    was, which may have been deleted since."""
    for place in (home, Path("/")):
        with contextlib.suppress(OSError):
            os.chdir(place)
            return


def _line(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0][:300]


def _exit_code(exc: SystemExit) -> int:
    """The exit code `exc` gives a process (as Python's own exit does): None is 0, a message is
    shown (on the run's stderr) and is 1."""
    if exc.code is None or isinstance(exc.code, int):
        return int(exc.code or 0) & 0xFF
    print(_line(exc), file=sys.stderr)
    return 1


def _watch_client(conn: socket.socket, run: _Going) -> None:
    """Ctrl-C at the client (an `interrupt` frame), or the client gone: interrupt the run (only
    while it is going)."""
    try:
        conn.settimeout(0.5)
    except OSError:  # closed already: the run has ended
        return
    while run.going:
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            chunk = b""
        if not chunk or b"interrupt" in chunk:
            run.interrupt()
            return


def serve_lab(home: Path, command: Callable[[list[str]], int]) -> int:
    """`swarmlab lab-process STATE_DIR` (hidden; `up` starts it): run the lab process."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = LabServer(home, command)
    server.prepare()
    server.serve(home / "lab.sock")
    return 0
