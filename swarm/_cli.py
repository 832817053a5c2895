"""The `swarmlab` command line.

Exit codes: 0 the run ended normally (also by a cap, a kill or a tripwire), 2 bad spec or
arguments, 1 an infrastructure failure. User mistakes get one line, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from ._errors import SpecError, SwarmError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(2, f"swarmlab: {message} (see swarmlab {self.prog.split()[-1]} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="swarmlab", description="Grow capped swarms of generated programs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run one capped experiment")
    run.add_argument("experiment", help="a built-in experiment name (see `list`) or a YAML file")
    run.add_argument("--program", metavar="FILE", help="run this file as the root program")
    run.add_argument("--model", help="model backend, e.g. sim or openai:http://host:8000/v1")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field, e.g. --set caps.programs=50 (repeatable)",
    )
    run.add_argument("--run-id", help="the run's id (default: name-date-time-random)")
    run.add_argument("--out", type=Path, help="run directory (default runs/<run-id>)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    run.add_argument("--ray-address", help="an existing Ray cluster (env SWARMLAB_RAY_ADDRESS)")
    run.add_argument("--redis-url", help="an existing Redis (env SWARMLAB_REDIS_URL)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
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

    sub.add_parser("list", help="built-in experiments")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(_COMMANDS[args.command](args) or 0)
    except SwarmError as exc:
        print(f"swarmlab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("swarmlab: interrupted", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from ._progress import Progress
    from ._run import RunOptions, run_experiment
    from ._spec import load_spec

    overrides = list(args.overrides)
    if args.model:
        overrides.append(f"model={args.model}")
    spec = load_spec(args.experiment, overrides)
    program = None
    if args.program:
        path = Path(args.program)
        if not path.is_file():
            raise SpecError(f"--program {args.program}: no such file")
        program = path.read_text()
        if not program.strip():
            raise SpecError(f"--program {args.program}: the file is empty")
    from observability import TelemetryConfig

    telemetry = TelemetryConfig.from_env(
        args.otlp_endpoint, args.otlp_protocol, enabled=not args.no_telemetry
    )
    options = RunOptions(
        telemetry=telemetry,
        program=program,
        run_id=args.run_id,
        out_dir=args.out,
        ray_address=args.ray_address,
        redis_url=args.redis_url,
        progress=Progress.for_terminal(quiet=args.quiet),
    )
    result = run_experiment(spec, options)
    if args.json:
        print(json.dumps(result.summary(), indent=1, default=str))
    return 0


def _kill(args: argparse.Namespace) -> int:
    from ._coordinator import Coordinator

    url = args.redis_url or _registered_url(args.run_id) or os.environ.get("SWARMLAB_REDIS_URL")
    if not url:
        raise SpecError(f"no live run '{args.run_id}' on this machine; pass --redis-url")

    async def kill() -> bool:
        coord = Coordinator(url, args.run_id)
        try:
            if not await coord.exists():
                raise SpecError(f"no live run '{args.run_id}' at {url}")
            return await coord.kill("swarmlab kill")
        finally:
            await coord.close()

    first = asyncio.run(kill())
    print(f"run {args.run_id}: {'stopping' if first else 'already stopping'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ._coordinator import Coordinator, live_runs
    from ._live import registered_runs

    urls: dict[str, str] = {r["run_id"]: r["redis_url"] for r in registered_runs()}
    extra = args.redis_url or os.environ.get("SWARMLAB_REDIS_URL")

    async def collect() -> list[dict[str, Any]]:
        if extra:
            for run_id in await live_runs(extra):
                urls.setdefault(run_id, extra)
        rows = []
        for run_id, url in sorted(urls.items()):
            if args.run_id and run_id != args.run_id:
                continue
            coord = Coordinator(url, run_id)
            try:
                meta = await coord.meta()
                usage = await coord.usage()
            finally:
                await coord.close()
            rows.append({"run_id": run_id, "status": meta.get("status", "?"), "caps": usage})
        return rows

    rows = asyncio.run(collect())
    if args.run_id and not rows:
        raise SpecError(f"no live run '{args.run_id}'")
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no live runs")
    for row in rows:
        caps = row["caps"]
        parts = [
            f"{c}={int(v['used'])}/{int(v['limit'])}"
            + (f" (denied {int(v['denied'])})" if v["denied"] else "")
            for c, v in caps.items()
            if c != "live"
        ]
        print(
            f"{row['run_id']}  {row['status']}  live={int(caps['live']['used'])}  "
            + " ".join(parts)
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    from ._spec import builtin_experiments, load_spec

    for name in builtin_experiments():
        spec = load_spec(name)
        print(f"{name:20} {' '.join(spec.description.split())[:100]}")
    return 0


def _registered_url(run_id: str) -> str | None:
    from ._live import registered_runs

    for info in registered_runs():
        if info["run_id"] == run_id:
            return str(info["redis_url"])
    return None


_COMMANDS = {"run": _run, "kill": _kill, "status": _status, "list": _list}

if __name__ == "__main__":
    sys.exit(main())
