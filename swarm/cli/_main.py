"""The `swarmlab` command line: parser and commands.

Exit codes: 0 the run ended normally (also by a cap, a kill or a tripwire), 2 bad spec or
arguments, 1 an infrastructure failure. User mistakes get one line, never a traceback. Every
text that did not come from this module (messages of errors, run ids, reasons a run ended)
reaches the terminal through `terminal_text`, so none of it can drive the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from swarmlab.core import ClusterError, SpecError, SwarmlabError, present
from swarmlab.spec import MAX_PARALLEL, check_environment, shown_redis_url, without_credentials

from . import _common
from ._common import (
    add_spec_arguments,
    check_out_dir,
    check_run_arguments,
    path_argument,
    ray_address_argument,
    redis_url_argument,
    source_argument,
    spec_overrides,
)
from ._fetch import add_fetch_parser, fetch_command, pack_command
from ._model_choice import choose_model
from ._model_choice import describe as describe_model
from ._report import (
    add_report_parser,
    add_traces_parser,
    report_command,
    traces_command,
    write_run_report,
)
from ._serve import add_serve_parser, serve_command
from ._status import status_command
from ._submit import add_submit_parser, submit_command
from ._text import terminal_text
from ._trials import add_trials_parser, trials_command
from ._warm import add_warm_parsers, down_command, up_command
from ._warm_client import run_on_server
from ._warm_server import LAB_COMMAND, serve_lab

EXIT_BROKEN_PIPE = 128 + 13
"""What a shell reports for a writer whose reader went away (SIGPIPE), e.g. `swarmlab list |
head`: nothing is wrong and nothing more is said."""


HELP = ("-h", "--help")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}
        """The top-level parser's commands (`build_parser`), each by its name."""

    def error(self, message: str) -> NoReturn:  # one line, exit 2
        said = terminal_text(message)
        self.exit(2, f"swarmlab: {said} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """As argparse's, but arguments a command does not know are reported by that command
        (`see swarmlab run --help`), not by `swarmlab` itself, and an option before any command
        is reported as unknown (argparse would ask for the command)."""
        words = sys.argv[1:] if args is None else args
        if self.commands and words and words[0].startswith("-") and words[0] not in HELP:
            self.error(f"unrecognized arguments: {words[0]}")
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = self.commands.get(getattr(parsed, "command", None) or "", self)
            command.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def build_parser() -> _Parser:
    parser = _Parser(prog="swarmlab", description="Grow capped swarms of generated programs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run one capped experiment")
    add_spec_arguments(run)
    run.add_argument(
        "--program", type=path_argument, metavar="FILE", help="run this file as the root program"
    )
    run.add_argument("--out", type=path_argument, help="run directory (default runs/<run-id>)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    run.add_argument("--ray-address", help="an existing Ray cluster (env SWARMLAB_RAY_ADDRESS)")
    run.add_argument("--redis-url", help="an existing Redis (env SWARMLAB_REDIS_URL)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument(
        "--report",
        action="store_true",
        help="also write report.html into the run directory at the end (as `swarmlab report`)",
    )
    run.add_argument(
        "--otlp-endpoint",
        help="send spans and metrics over OTLP, e.g. http://jaeger:4318 "
        "(default: OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    run.add_argument(
        "--otlp-protocol",
        choices=["http/protobuf", "grpc"],
        help="OTLP transport (default http/protobuf, or OTEL_EXPORTER_OTLP_PROTOCOL)",
    )
    run.add_argument(
        "--no-telemetry",
        action="store_true",
        help="record no spans or metrics (the run directory then has no traces)",
    )

    kill = sub.add_parser("kill", help="stop every program of a live run")
    kill.add_argument("run_id")
    kill.add_argument("--redis-url", help="the run's Redis (found automatically for local runs)")

    status = sub.add_parser("status", help="live runs and their cap usage")
    status.add_argument("run_id", nargs="?")
    status.add_argument("--redis-url", help="also list runs on this Redis (env SWARMLAB_REDIS_URL)")
    status.add_argument("--json", action="store_true")

    _add_sweep_parser(sub)
    add_submit_parser(sub)
    add_fetch_parser(sub)
    add_report_parser(sub)
    add_traces_parser(sub)
    add_serve_parser(sub)
    add_trials_parser(sub)
    add_warm_parsers(sub)
    sub.add_parser("list", help="built-in experiments and sweeps")
    sub.metavar = "{" + ",".join(name for name in sub.choices if name != LAB_COMMAND) + "}"
    parser.commands = dict(sub.choices)
    return parser


def _add_sweep_parser(sub: Any) -> None:
    sweep = sub.add_parser("sweep", help="run a series of experiments (conditions x seeds)")
    sweep.add_argument(
        "sweep", type=source_argument, help="a built-in sweep (see `list`) or a sweep YAML file"
    )
    sweep.add_argument("--out", type=path_argument, help="sweep directory (default sweeps/<name>)")
    sweep.add_argument("--parallel", type=int, help="cells running at once")
    sweep.add_argument("--ray-address", help="an existing Ray cluster (env SWARMLAB_RAY_ADDRESS)")
    sweep.add_argument("--redis-url", help="an existing Redis (env SWARMLAB_REDIS_URL)")
    sweep.add_argument("--json", action="store_true", help="print the sweep summary as JSON")
    sweep.add_argument("--quiet", action="store_true", help="no progress output")
    sweep.add_argument(
        "--seeds", type=int, metavar="N", help="seeds 1..N instead of the sweep's (a quick look)"
    )
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a spec field in every cell, e.g. --set caps.programs=20 (repeatable; default "
        "directory sweeps/<name>-set-<hash>)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if args.command in STARTS:  # before any process, Redis key or directory exists
            check_environment()
        code = int(_COMMANDS[args.command](args) or 0)
        sys.stdout.flush()  # inside the try: a reader that left shows up here, not at exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except SwarmlabError as exc:
        _say(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        return 1
    except OSError as exc:  # the disk, the file system: the operator's to look at
        where = f"{exc.filename}: " if exc.filename else ""
        _say(f"{where}{exc.strerror or exc}")
        return 1


def _say(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    print(f"swarmlab: {terminal_text(without_credentials(message))}", file=sys.stderr, flush=True)


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit does not fail a second time."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _run(args: argparse.Namespace) -> int:
    from swarmlab.observability.telemetry import TelemetryConfig
    from swarmlab.runtime import RunOptions, run_experiment
    from swarmlab.spec import load_spec, read_text_file

    from ._progress import Progress

    check_run_arguments(args)
    served = _on_warm_server(args)
    if served is not None:
        return served
    redis_url = redis_url_argument(args.redis_url)
    choice = choose_model(load_spec(args.experiment, spec_overrides(args)), args.model, os.environ)
    spec = choice.spec
    if choice.from_cluster and not args.quiet:
        _say(describe_model(choice))
    if spec.model.startswith("replay:"):
        _check_recording(spec.model)
    program = None
    if args.program:
        path = Path(args.program)
        if not present(path):
            raise SpecError(f"--program {args.program}: no such file")
        program = read_text_file(path, "--program")
        if not program.strip():
            raise SpecError(f"--program {args.program}: the file is empty")
    telemetry = TelemetryConfig.from_env(
        args.otlp_endpoint, args.otlp_protocol, enabled=not args.no_telemetry
    )
    options = RunOptions(
        telemetry=telemetry,
        program=program,
        run_id=args.run_id,
        out_dir=args.out,
        ray_address=ray_address_argument(args.ray_address),
        redis_url=redis_url,
        progress=Progress.for_terminal(quiet=args.quiet),
        runners=_common.RUNNER_LENDER(spec) if _common.RUNNER_LENDER else None,
    )
    result = run_experiment(spec, options)
    if args.report:
        _write_report(result.out_dir)
    if args.json:  # ASCII only, as every --json: a program's text never reaches the terminal raw
        print(json.dumps(result.summary().model_dump(mode="json"), indent=1))
    if result.status == "failed":
        _say(f"run {result.run_id} failed: {result.ended_because}")
        return 1
    if result.replay is not None and result.replay.unreadable:
        _say(f"run {result.run_id}: replay failed: {result.replay.unreadable}")
        return 2
    return 0


def _check_recording(model: str) -> None:
    """A `replay:` run's recorded completions, read before anything starts: missing or
    damaged, they are the user's to fix (exit 2), not a run that fails."""
    from swarmlab.core import ModelError
    from swarmlab.models import create_backend

    recording = Path(model.removeprefix("replay:")) / "completions.jsonl"
    if not present(recording):
        raise SpecError(f"model {model}: no recording at {recording}")
    try:
        create_backend(model)
    except ModelError as exc:
        raise SpecError(f"model {model}: {str(exc).removeprefix('replay: ')}") from None


def _on_warm_server(args: argparse.Namespace) -> int | None:
    """The run handed to `swarmlab up`'s lab process, when it takes it: its exit code."""
    given = args.ray_address or args.redis_url
    env = ("SWARMLAB_NO_WARM_SERVER", "SWARMLAB_REDIS_URL", "SWARMLAB_RAY_ADDRESS")
    if given or any(os.environ.get(name) for name in env) or _common.RUNNER_LENDER:
        return None
    from swarmlab.cluster import warm_dir

    return run_on_server(args.argv, warm_dir())


def _write_report(run_dir: Path) -> None:
    """The run's page beside its record; a page that cannot be made is said, not fatal."""
    try:
        page = write_run_report(run_dir)
    except (SwarmlabError, OSError) as exc:
        _say(f"run directory {run_dir}: no report.html ({exc})")
        return
    _say(f"report {page}")


KILL_WAIT_S = 10.0
"""How long `kill` waits for the run's Redis to answer."""


def _kill(args: argparse.Namespace) -> int:
    from swarmlab.runtime import Coordinator
    from swarmlab.spec import check_run_id

    check_run_id(args.run_id, "run id")
    url = (
        redis_url_argument(args.redis_url, env=False)
        or _registered_url(args.run_id)
        or redis_url_argument(None)
    )
    if not url:
        raise SpecError(f"no live run '{args.run_id}' on this machine; pass --redis-url")

    async def kill() -> bool:
        coord = Coordinator(url, args.run_id)
        try:
            if not await coord.exists():
                raise SpecError(f"no live run '{args.run_id}' at {shown_redis_url(url)}")
            return await coord.kill("swarmlab kill")
        finally:
            await coord.close()

    async def bounded() -> bool:
        try:
            return await asyncio.wait_for(kill(), KILL_WAIT_S)
        except TimeoutError:
            raise ClusterError(
                f"run {args.run_id}: its Redis {shown_redis_url(url)} does not answer "
                f"(waited {KILL_WAIT_S:g} s)"
            ) from None

    first = asyncio.run(bounded())
    print(f"run {args.run_id}: {'stopping' if first else 'already stopping'}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from swarmlab.experiments import SweepRunner

    from ._progress import Progress

    if args.parallel is not None and not 1 <= args.parallel <= MAX_PARALLEL:
        raise SpecError(f"--parallel {args.parallel}: must be from 1 to {MAX_PARALLEL}")
    check_out_dir(args.out)
    runner = SweepRunner(
        args.sweep,
        out_dir=args.out,
        redis_url=redis_url_argument(args.redis_url),
        ray_address=ray_address_argument(args.ray_address),
        parallel=args.parallel,
        progress=Progress(quiet=args.quiet),
        seeds=args.seeds,
        overrides=args.overrides,
    )
    summary = runner.run()
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(
            terminal_text(
                f"sweep {summary['sweep']}: {summary['cells']} runs {summary['by_status']}; "
                f"results in {summary['out_dir']}"
            )
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    """A sweep directory gets the sweep's page; run directories go to the run report."""
    from swarmlab.experiments import is_sweep_dir, report_sweep

    runs = [Path(r) for r in args.runs]
    if len(runs) == 1 and is_sweep_dir(runs[0]):
        summary = report_sweep(runs[0])
        print(
            terminal_text(
                f"sweep {summary['sweep']}: {summary['cells']} runs {summary['by_status']}; "
                f"page {runs[0] / 'index.html'}"
            )
        )
        return 0
    return int(report_command(args))


def _list(args: argparse.Namespace) -> int:
    from swarmlab.experiments import builtin_sweeps, load_sweep
    from swarmlab.spec import builtin_experiments, load_spec

    print("experiments:")
    for name in builtin_experiments():
        spec = load_spec(name)
        print(f"  {name:20} {' '.join(spec.description.split())[:96]}")
    print("sweeps:")
    for name in builtin_sweeps():
        sweep, _ = load_sweep(name)
        print(f"  {name:20} {' '.join(sweep.description.split())[:96]}")
    return 0


def _registered_url(run_id: str) -> str | None:
    from swarmlab.runtime import registered_runs
    from swarmlab.spec import check_redis_url

    for info in registered_runs():
        if info["run_id"] == run_id:
            return check_redis_url(str(info["redis_url"]), f"the registry's URL for {run_id}")
    return None


STARTS = {"run", "sweep", "submit", "trials", "up", "serve-model", LAB_COMMAND}
"""Commands that start something: every variable the lab reads is checked first."""

_COMMANDS = {
    "run": _run,
    "kill": _kill,
    "status": status_command,
    "sweep": _sweep,
    "submit": submit_command,
    "fetch": fetch_command,
    "pack-run": pack_command,
    "report": _report,
    "traces": traces_command,
    "serve-model": serve_command,
    "trials": trials_command,
    "list": _list,
    "up": up_command,
    LAB_COMMAND: lambda args: serve_lab(Path(args.home), main),
    "down": down_command,
}
