"""`swarmlab submit`: run an experiment as a Ray job on a cluster and follow it to its end.

The job runs the same code path as a local run, `swarmlab run SPEC --run-id ID --json`, on the
cluster's head, against the cluster's Ray (`--ray-address auto`) and Redis (`SWARMLAB_REDIS_URL`
in the cluster's environment, or `--redis-url`). The spec is validated here first and travels
inside the job as its working directory, so a bad spec never reaches the cluster.

The model: `--model` here travels as `--model` on the job's command line, so it wins on the
cluster too; otherwise the spec's model, and where the spec keeps the default (`sim`), the
cluster's own model server (`SWARMLAB_MODEL_URL` in its environment; see `_model_choice`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlencode

import yaml

from swarmlab.core import SpecError, SwarmlabError

from ._common import add_spec_arguments, redis_url_argument, spec_overrides
from ._fetch import (
    RUNS_DIR,
    add_fetch_arguments,
    auth_token,
    check_fetch_out,
    fetch_run,
    job_server_address,
    max_bytes_argument,
)
from ._model_choice import DEFAULT_MODEL, FROM_CLUSTER, FROM_COMMAND_LINE, FROM_DEFAULT, FROM_SPEC
from ._text import terminal_text

if TYPE_CHECKING:
    from swarmlab.cluster import JobServer, Unpacked
    from swarmlab.spec import ExperimentSpec

SPEC_FILE = "experiment.yaml"
DEFAULT_JAEGER_URL = "http://localhost:16686"
TRACE_SERVICE = "swarmlab"
TRACE_TAG = "swarmlab.run_id"
POLL_S = 1.0
PENDING_NOTE_S = 10.0
LOCATION_WAIT_S = 30.0
"""How long `--no-wait` waits for the job to say where its run directory is."""
RUN_DIR_LINE = re.compile(r"^swarmlab: run directory (?P<path>.+) on (?P<host>\S+)$", re.M)


def add_submit_parser(sub: Any) -> None:
    """Add `submit` to the CLI's subcommands (`sub` is argparse's subparsers object)."""
    submit = sub.add_parser("submit", help="run an experiment as a Ray job on a cluster")
    add_spec_arguments(submit)
    submit.add_argument(
        "--address",
        help="the cluster's job server, e.g. http://<ray-head>:8265 "
        "(env RAY_ADDRESS or SWARMLAB_RAY_ADDRESS); token from env RAY_AUTH_TOKEN",
    )
    submit.add_argument(
        "--redis-url",
        help="the Redis the cluster should use, as seen from the cluster "
        "(default: the cluster's own SWARMLAB_REDIS_URL)",
    )
    submit.add_argument(
        "--jaeger-url",
        help=f"the Jaeger UI, for the trace link (env SWARMLAB_JAEGER_URL, default "
        f"{DEFAULT_JAEGER_URL})",
    )
    submit.add_argument(
        "--no-wait",
        action="store_true",
        help="submit, print the ids and where the run directory is on the cluster, return",
    )
    submit.add_argument(
        "--no-fetch",
        action="store_true",
        help="leave the run directory on the cluster (default: bring it home at the end)",
    )
    add_fetch_arguments(submit, submit=True)
    submit.add_argument(
        "--json", action="store_true", help="print the result (and the run's summary) as JSON"
    )


def submit_command(args: argparse.Namespace) -> int:
    from swarmlab.cluster import JobServer
    from swarmlab.spec import load_spec

    address = job_server_address(args.address)
    spec = load_spec(args.experiment, spec_overrides(args))
    run_id = _run_id(args.run_id, spec.name)
    out = check_fetch_out(args.out, run_id)
    max_bytes = max_bytes_argument(args.max_mb)
    env_vars = _job_env(args.redis_url)
    jaeger = _jaeger_url(args.jaeger_url)
    job_id = f"swarmlab-{run_id}"
    started = time.time()
    server = JobServer(address, token=auth_token())
    if server.exists(job_id):
        raise SpecError(f"--run-id {run_id}: the cluster already has a job for this run")
    _submit(server, spec, run_id, job_id, env_vars, args.model)
    _note(f"run {run_id} submitted to {address} as Ray job {job_id}")
    _note(_model_note(spec, args.model))
    if args.no_wait:
        end = started + spec.caps.wall_clock_s + 3600
        result = _result(run_id, job_id, "SUBMITTED", address, None, _location(server, job_id))
        result["model"] = model_summary(spec, args.model, None)
        result["trace_url"] = jaeger_search_url(jaeger, run_id, started, end)
        _print_result(result, args.json)
        return 0
    try:
        status, logs = _follow(server, job_id, sys.stderr)
    except KeyboardInterrupt:
        _note(
            f"detached from run {run_id}: it goes on as Ray job {job_id}; stop it with "
            f"`swarmlab kill {run_id} --redis-url <the cluster's Redis>`"
        )
        return 1
    message = server.message(job_id) if status != "SUCCEEDED" else ""
    summary = parse_summary(logs)
    result = _result(run_id, job_id, status, address, summary, RUN_DIR_LINE.search(logs))
    result["model"] = model_summary(spec, args.model, summary)
    result["trace_url"] = jaeger_search_url(jaeger, run_id, started, time.time() + 60)
    if status != "SUCCEEDED":
        why = _why(status, logs, message)
        raise SwarmlabError(f"run {run_id}: Ray job {job_id} {status}: {why}")
    if summary is None:
        raise SwarmlabError(f"run {run_id}: Ray job {job_id} ended without a summary in its log")
    if not args.no_fetch:
        result["fetched"] = str(_fetch_home(server, run_id, out, max_bytes).path.absolute())
    _print_result(result, args.json)
    return 0


def _fetch_home(server: JobServer, run_id: str, out: Path, max_bytes: int) -> Unpacked:
    _note(f"fetching run {run_id}'s directory to {out}")
    try:
        return fetch_run(server, run_id, out, max_bytes)
    except SwarmlabError as exc:
        raise SwarmlabError(
            f"run {run_id} ended, but its directory did not come home: {exc}; "
            f"try again with `swarmlab fetch {run_id}`"
        ) from None


def _location(server: JobServer, job_id: str) -> re.Match[str] | None:
    """Where the job says its run directory is, once it has started (None if it has not
    within `LOCATION_WAIT_S`: a cluster with no room for it yet)."""
    give_up = time.monotonic() + LOCATION_WAIT_S
    while True:
        status = server.status(job_id)
        where = RUN_DIR_LINE.search(server.logs(job_id))
        if where or status in server.TERMINAL or time.monotonic() > give_up:
            return where
        time.sleep(POLL_S / 2)


def _jaeger_url(given: str | None) -> str:
    """`--jaeger-url`, else SWARMLAB_JAEGER_URL, else the default: an http(s) URL."""
    from swarmlab.spec import check_http_url, env_value

    if given:
        return check_http_url(given, "--jaeger-url", DEFAULT_JAEGER_URL)
    return env_value("SWARMLAB_JAEGER_URL") or DEFAULT_JAEGER_URL


def _job_env(redis_url: str | None) -> dict[str, str]:
    """Environment variables the job gets on top of the cluster's own."""
    url = redis_url_argument(redis_url, env=False)  # the local SWARMLAB_REDIS_URL stays here
    return {"SWARMLAB_REDIS_URL": url} if url else {}


def _submit(
    server: JobServer,
    spec: ExperimentSpec,
    run_id: str,
    job_id: str,
    env_vars: dict[str, str],
    model: str | None,
) -> None:
    """Send the job, with the spec as its working directory."""
    with tempfile.TemporaryDirectory(prefix="swarmlab-submit-") as workdir:
        (Path(workdir) / SPEC_FILE).write_text(spec_document(spec))
        runtime_env: dict[str, Any] = {"working_dir": workdir}
        if env_vars:
            runtime_env["env_vars"] = env_vars
        server.submit(
            job_entrypoint(run_id, model),
            submission_id=job_id,
            runtime_env=runtime_env,
            metadata={"swarmlab.run_id": run_id, "swarmlab.experiment": spec.name},
        )


def spec_document(spec: ExperimentSpec) -> str:
    """The spec as it will run, every field spelled out, as the YAML file the job carries."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def job_entrypoint(run_id: str, model: str | None = None) -> str:
    """The job's shell command: announce where the run directory goes, then `swarmlab run`.

    An explicit `model` is passed as `--model`, so that it wins over the cluster's own model."""
    out = f"{RUNS_DIR}/{shlex.quote(run_id)}"
    argv = ["swarmlab", "run", SPEC_FILE, "--run-id", run_id, "--ray-address", "auto", "--json"]
    argv.append("--report")
    if model:
        argv += ["--model", model]
    run = shlex.join(argv)
    return (
        f'out={out} && echo "swarmlab: run directory $out on $(uname -n)" >&2 && '
        f'exec {run} --out "$out"'
    )


def _model_note(spec: ExperimentSpec, explicit: str | None) -> str:
    if explicit:
        return f"model {spec.model}, from {FROM_COMMAND_LINE}"
    if spec.model != DEFAULT_MODEL:
        return f"model {spec.model}, from {FROM_SPEC}"
    return (
        f"model: the cluster's own (its SWARMLAB_MODEL_URL), or {DEFAULT_MODEL} where it names "
        f"none; --model {DEFAULT_MODEL} forces the simulation policy"
    )


def model_summary(
    spec: ExperimentSpec, explicit: str | None, summary: dict[str, Any] | None
) -> dict[str, Any]:
    """The model the run used (from its summary, once known) and who chose it."""
    ran = (summary or {}).get("spec", {}).get("model")
    if explicit:
        chosen_by = FROM_COMMAND_LINE
    elif spec.model != DEFAULT_MODEL:
        chosen_by = FROM_SPEC
    elif ran is None:
        chosen_by = f"{FROM_CLUSTER}, or {FROM_DEFAULT} where the cluster names none"
    else:
        chosen_by = FROM_CLUSTER if ran != DEFAULT_MODEL else FROM_DEFAULT
    info = (summary or {}).get("model") or {}
    backend, name = info.get("backend"), info.get("name")
    if isinstance(name, str) and isinstance(backend, str):  # as served, without the backend
        name = name.removeprefix(f"{backend}:")
    return {
        "model": ran or spec.model,
        "backend": backend,
        "name": name,
        "chosen_by": chosen_by,
    }


def jaeger_search_url(base: str, run_id: str, start_s: float, end_s: float) -> str:
    """The Jaeger UI's search for the run's trace (its id is only known once the run starts)."""
    query = {
        "service": TRACE_SERVICE,
        "tags": json.dumps({TRACE_TAG: run_id}, separators=(",", ":")),
        "lookback": "custom",
        "start": str(int((start_s - 60) * 1_000_000)),
        "end": str(int(end_s * 1_000_000)),
        "limit": "20",
    }
    return f"{base.rstrip('/')}/search?{urlencode(query)}"


def parse_summary(logs: str) -> dict[str, Any] | None:
    """The summary `swarmlab run --json` printed last: the final top-level JSON object."""
    lines = logs.splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start] != "{":
            continue
        try:
            found = json.loads("\n".join(lines[start:]))
        except json.JSONDecodeError:
            continue
        if isinstance(found, dict) and "run_id" in found:
            return found
    return None


class LogEcho:
    """Writes the new complete lines of a growing log; stops before the closing JSON summary."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.seen = 0
        self.done = False

    def feed(self, logs: str, final: bool = False) -> None:
        end = len(logs) if final else logs.rfind("\n") + 1
        if self.done or end <= self.seen:
            return
        for line in logs[self.seen : end].splitlines():
            if line == "{":  # the summary follows: it is printed at the end, not streamed
                self.done = True
                break
            self.stream.write(terminal_text(line) + "\n")
        self.seen = end
        self.stream.flush()


def _follow(server: JobServer, job_id: str, stream: TextIO) -> tuple[str, str]:
    """Stream the job's log until it ends; returns the final status and the whole log."""
    echo = LogEcho(stream)
    waiting_noted = False
    since = time.monotonic()
    while True:
        status = server.status(job_id)  # before the logs: once it is final, the log is whole
        logs = server.logs(job_id)
        final = status in server.TERMINAL
        echo.feed(logs, final=final)
        if final:
            return status, logs
        if status == "PENDING" and not waiting_noted and time.monotonic() - since > PENDING_NOTE_S:
            _note(f"job {job_id} is waiting for the cluster to start it")
            waiting_noted = True
        time.sleep(POLL_S)


def _run_id(given: str | None, name: str) -> str:
    from swarmlab.spec import check_run_id

    if given is not None:
        return check_run_id(given, "--run-id")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._") or "experiment"
    return f"{stem[:80]}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"


def _result(
    run_id: str,
    job_id: str,
    status: str,
    address: str,
    summary: dict[str, Any] | None,
    where: re.Match[str] | None,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "job_id": job_id,
        "job_status": status,
        "address": address,
        "run_dir": where["path"]
        if where
        else f"$SWARMLAB_RUNS_DIR/{run_id} on the Ray head, once the job starts",
        "run_host": where["host"] if where else None,
        "summary": summary,
        "fetched": None,
    }


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=1, default=str))
        return
    rows = [("run", result["run_id"]), ("job", f"{result['job_id']} ({result['job_status']})")]
    summary = result["summary"]
    if summary is not None:
        programs = summary.get("programs", {})
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(programs.get("by_status", {}).items()))
        caps = ", ".join(
            f"{cap} {int(c['used'])}/{int(c['limit'])}"
            + (f" (denied {int(c['denied'])})" if c.get("denied") else "")
            for cap, c in summary.get("caps", {}).items()
        )
        rows += [
            ("status", f"{summary.get('status')}: {summary.get('ended_because')}"),
            ("model", _model_row(result["model"])),
            ("programs", f"{programs.get('total')} ({by_status})"),
            ("caps", caps),
        ]
    where = result["run_dir"] + (f" on {result['run_host']}" if result["run_host"] else "")
    rows += [("directory", where)]
    if result["fetched"]:
        rows.append(("fetched", f"{result['fetched']} (report: {result['fetched']}/report.html)"))
    else:
        rows.append(("fetch", f"swarmlab fetch {result['run_id']} --address {result['address']}"))
    rows.append(("trace", result["trace_url"]))
    if summary is None:
        rows.append(
            ("follow", f"ray job logs --follow {result['job_id']} --address {result['address']}")
        )
    for key, value in rows:  # the summary came from the cluster: shown as text
        print(f"{key:10} {terminal_text(value)}")


def _model_row(model: dict[str, Any]) -> str:
    served = f" ({model['name']})" if model.get("name") else ""
    return f"{model['model']}{served}, from {model['chosen_by']}"


def _why(status: str, logs: str, message: str) -> str:
    """One line: why the job ended badly. A failed run's last log line says it (the CLI's own
    one-line error, or the end of a traceback); a stopped job's reason is the server's."""
    lines = [line for line in logs.splitlines() if line.strip()]
    said = [line for line in message.strip().splitlines() if line.strip()]
    if lines and (status == "FAILED" or not said):
        return lines[-1].removeprefix("swarmlab: ")
    return said[-1] if said else "the job left no log"


def _note(text: str) -> None:
    print(f"swarmlab: {terminal_text(text)}", file=sys.stderr, flush=True)
