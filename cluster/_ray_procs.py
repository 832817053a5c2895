"""Which processes on this machine are the lab's own Ray's, so that stopping a Ray stops nothing
else.

A Ray started with `--temp-dir=DIR` names DIR on its processes' command lines only as the value
of one of its own options (`--temp-dir=DIR`, `--session_dir=DIR/session_...`,
`--raylet-name=DIR/session_.../sockets/raylet`, ...). Any other process may hold the same text
(`tail -F DIR/session_.../logs/raylet.out`, a path that merely starts with DIR's text): a
process counts as the Ray's only when it is one of Ray's own programs (an executable of the
`ray` package this interpreter has, or this interpreter running a file of that package, a
`ray.*` module or a worker Ray has renamed `ray::...`), runs as this user, and names DIR, or a
path below it, as the value of a `--option=`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
from pathlib import Path


@functools.cache
def ray_home() -> Path | None:
    """The folder of the `ray` package this interpreter imports (found without importing it)."""
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec("ray")
        if spec is not None and spec.origin:
            return Path(spec.origin).resolve().parent
    return None


def _python() -> str:
    return os.path.realpath(sys.executable)


def _inside(path: str, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(folder)


def runs_ray_code(exe: str, argv: list[str], home: Path | None, python: str) -> bool:
    """Whether a process running `exe` with `argv` is one of Ray's own programs."""
    if home is None or not exe:
        return False
    if _inside(exe, home):
        return True
    if os.path.realpath(exe) != python or not argv:
        return False
    if argv[0].startswith("ray::"):  # a worker or an agent, renamed by Ray
        return True
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "-m":
            module = next(rest, "")
            return module == "ray" or module.startswith("ray.")
        if arg.startswith("-"):
            continue  # an interpreter flag (-u, -B, ...); -c runs code of its own
        return _inside(arg, home)
    return False


def names_temp_dir(argv: list[str], temp_dirs: list[str]) -> bool:
    """Whether an argument is `--option=D` or `--option=D/...` for one of `temp_dirs`: a whole
    path given as an option's value, the form Ray's programs are started with."""
    roots = [d.rstrip("/") for d in temp_dirs if d.rstrip("/")]
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            continue
        value = arg.split("=", 1)[1]
        if any(value == root or value.startswith(root + "/") for root in roots):
            return True
    return False


def _process(pid: int) -> tuple[str, list[str]] | None:
    """A process's executable and arguments, when it runs as this user."""
    proc = Path(f"/proc/{pid}")
    try:
        if proc.stat().st_uid != os.getuid():
            return None
        exe = os.readlink(proc / "exe")
        raw = (proc / "cmdline").read_bytes()
    except OSError:
        return None
    return exe, raw.decode(errors="replace").rstrip("\0").split("\0")


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def ray_pids(temp_dirs: list[str], home: Path | None = None) -> list[int]:
    """The lab's Ray's processes started on one of `temp_dirs` (this process apart)."""
    home, python = home or ray_home(), _python()
    found = []
    for pid in _pids():
        seen = _process(pid) if pid != os.getpid() else None
        if seen is not None and names_temp_dir(seen[1], temp_dirs):
            found += [pid] if runs_ray_code(*seen, home, python) else []
    return found


def is_ray_process(pid: int, home: Path | None = None) -> bool:
    """Whether process `pid` is one of Ray's own programs, run as this user."""
    seen = _process(pid)
    return seen is not None and runs_ray_code(seen[0], seen[1], home or ray_home(), _python())


def ray_binary(pid: int) -> str | None:
    """The name of the Ray executable process `pid` runs (`raylet`, `gcs_server`), if any."""
    home, seen = ray_home(), _process(pid)
    if home is None or seen is None or not _inside(seen[0], home):
        return None
    return Path(seen[0]).name
