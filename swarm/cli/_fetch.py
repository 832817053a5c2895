"""`swarmlab fetch`: bring a submitted run's directory from the cluster to this machine.

The only way in is the cluster's job server, the one `submit` used. `fetch` submits a small job,
`swarmlab pack-run`, which packs the run directory on the head (where the run wrote it:
`$SWARMLAB_RUNS_DIR/RUN_ID`) and prints it as a framed, digested archive on its log; `fetch` reads
that log back, bounded, and writes the files (see `swarmlab.cluster._archive` for what it
refuses). The job is deleted afterwards, its log with it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmlab.core import MAX_SMALL_BYTES, ClusterError, SpecError, read_text
from swarmlab.spec import env_value

from ._common import path_argument
from ._text import terminal_text

if TYPE_CHECKING:
    from swarmlab.cluster import JobServer, Unpacked

DEFAULT_RUNS_DIR = "/tmp/swarmlab-runs"
RUNS_DIR = f'"${{SWARMLAB_RUNS_DIR:-{DEFAULT_RUNS_DIR}}}"'
"""Where the cluster keeps run directories, as its shell spells it (in a job's entrypoint)."""
DEFAULT_MAX_MB = 256
FETCH_TIMEOUT_S = 600.0


def add_fetch_parser(sub: Any) -> None:
    fetch = sub.add_parser(
        "fetch",
        help="bring a submitted run's directory home from the cluster",
        description="Copy a run directory from the cluster's head (where `submit` ran it) to "
        "this machine, through the cluster's job server.",
    )
    fetch.add_argument("run_id", metavar="RUN_ID")
    add_fetch_arguments(fetch)
    pack = sub.add_parser(
        "pack-run", help="(runs on a cluster, for `fetch`) print a run directory as an archive"
    )
    pack.add_argument("run_dir", type=path_argument)
    pack.add_argument("--run-id", required=True)
    pack.add_argument("--max-mb", type=int, default=DEFAULT_MAX_MB)


def add_fetch_arguments(parser: argparse.ArgumentParser, submit: bool = False) -> None:
    """`--out` and `--max-mb`, which `fetch` and `submit` share (`--address` is `submit`'s)."""
    if not submit:
        parser.add_argument(
            "--address",
            help="the cluster's job server, e.g. http://<ray-head>:8265 "
            "(env RAY_ADDRESS or SWARMLAB_RAY_ADDRESS); token from env RAY_AUTH_TOKEN",
        )
    parser.add_argument(
        "--out",
        type=path_argument,
        help="where the run directory goes on this machine (default runs/<run-id>)",
    )
    parser.add_argument(
        "--max-mb",
        type=int,
        default=DEFAULT_MAX_MB,
        metavar="MB",
        help=f"largest run directory to bring home, in MiB (default {DEFAULT_MAX_MB})",
    )


def fetch_command(args: argparse.Namespace) -> int:
    from swarmlab.cluster import JobServer
    from swarmlab.spec import check_run_id

    run_id = check_run_id(args.run_id, "run id")
    out = check_fetch_out(args.out, run_id)
    max_bytes = max_bytes_argument(args.max_mb)
    server = JobServer(job_server_address(args.address), token=auth_token())
    got = fetch_run(server, run_id, out, max_bytes)
    print(f"{terminal_text(str(got.path))}: {got.files} files, {got.bytes} bytes")
    report = got.path / "report.html"
    if report.is_file():
        print(f"report: {terminal_text(str(report))}")
    if not (got.path / "summary.json").is_file():
        print(
            f"swarmlab: run {run_id} has not ended yet (no summary.json): fetch again later",
            file=sys.stderr,
        )
    return 0


def job_server_address(given: str | None) -> str:
    address = given or env_value("RAY_ADDRESS") or env_value("SWARMLAB_RAY_ADDRESS")
    if not address:
        raise SpecError(
            "no cluster named: pass --address http://<ray-head>:8265 or set RAY_ADDRESS "
            "(or SWARMLAB_RAY_ADDRESS)"
        )
    if "://" not in address and address != "auto":
        address = f"http://{address}"
    return address.rstrip("/")


def auth_token() -> str | None:
    """The cluster's Ray token: RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names (read
    as any file the lab did not write: regular, small, UTF-8)."""
    token = env_value("RAY_AUTH_TOKEN") or ""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if not token and path:
        token = read_text(Path(path).expanduser(), "RAY_AUTH_TOKEN_PATH", MAX_SMALL_BYTES).strip()
    return token or None


def check_fetch_out(out: Path | None, run_id: str) -> Path:
    from swarmlab.cluster import plain_out_dir

    out = out if out is not None else Path("runs") / run_id
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out {out}: is a file, not a directory; name a directory to write to")
    plain_out_dir(out)  # a link where the run goes: refused before anything is submitted
    return out


def max_bytes_argument(max_mb: int) -> int:
    if not 1 <= max_mb <= 16384:
        raise SpecError(f"--max-mb {max_mb}: must be between 1 and 16384")
    return int(max_mb) << 20


def fetch_entrypoint(run_id: str, max_mb: int) -> str:
    """The fetch job's shell command: pack the run directory where the cluster keeps runs."""
    argv = ["--run-id", run_id, "--max-mb", str(max_mb)]
    return f"exec swarmlab pack-run {RUNS_DIR}/{shlex.quote(run_id)} {shlex.join(argv)}"


def fetch_run(server: JobServer, run_id: str, out: Path, max_bytes: int) -> Unpacked:
    """Pack the run on the cluster, read the archive from the job's log, write it at `out`."""
    from swarmlab.cluster import decode_archive, unpack_run_archive

    job_id = f"swarmlab-fetch-{run_id}-{os.urandom(3).hex()}"
    server.submit(
        fetch_entrypoint(run_id, max_bytes >> 20),
        submission_id=job_id,
        runtime_env={},
        metadata={"swarmlab.run_id": run_id, "swarmlab.fetch": "1"},
    )
    try:
        status = server.wait(job_id, FETCH_TIMEOUT_S)
        # base64 of the gzip'd files (gzip can grow incompressible bytes a little) + the framing
        logs = server.bounded_logs(job_id, max_bytes * 4 // 3 + (4 << 20))
    finally:
        server.delete(job_id)
    if status != "SUCCEEDED":
        said = [line for line in logs.split("\n") if line.strip()]
        why = said[-1].removeprefix("swarmlab: ") if said else "the job left no log"
        raise ClusterError(f"fetch {run_id}: {why}")
    return unpack_run_archive(decode_archive(logs, max_bytes + (4 << 20)), run_id, out, max_bytes)


def pack_command(args: argparse.Namespace) -> int:
    """On the cluster: the run directory as an archive on stdout (what `fetch` reads)."""
    from swarmlab.cluster import encode_archive, pack_run_dir
    from swarmlab.spec import check_run_id

    run_id = check_run_id(args.run_id, "--run-id")
    run_dir: Path = args.run_dir
    if not run_dir.is_dir() or run_dir.is_symlink():
        raise ClusterError(f"no run {run_id} on this cluster (no directory {run_dir})")
    data = pack_run_dir(run_dir, run_id, max_bytes_argument(args.max_mb))
    sys.stdout.write(encode_archive(data))
    return 0
