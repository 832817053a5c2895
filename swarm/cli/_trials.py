"""`swarmlab trials`: trial tables for real models, and their annotation round trip.

    swarmlab trials run EXPERIMENT --model M [--model M2] [--persona P]... [--affordance A]... -n N
    swarmlab trials table DIR                 rebuild the tables and exports from the runs
    swarmlab trials annotate DIR              a stratified sample for two labellers
    swarmlab trials agreement DIR             kappa, and each detector against the agreed labels

Nothing heavy loads until a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from swarmlab.core import SpecError, present
from swarmlab.spec import MAX_PARALLEL

from ._common import path_argument, ray_address_argument, redis_url_argument, source_argument

__all__ = ["add_trials_parser", "trials_command"]

AFFORDANCES = ("none", "hint", "api")


class _StepParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(2, f"swarmlab: {message} (see {self.prog} --help)\n")


def add_trials_parser(sub: Any) -> argparse.ArgumentParser:
    trials: argparse.ArgumentParser = sub.add_parser(
        "trials",
        help="N independent trials per model x persona x affordance, as a table",
        description="Run independent trials of an experiment per model, persona and affordance "
        "and tabulate them per trial and per condition (rates with Wilson intervals, pass@k, "
        "means with bootstrap intervals); export trajectories with a datasheet; sample them "
        "for two labellers and score the detectors against their labels.",
    )
    steps = trials.add_subparsers(
        dest="trials_command", required=True, metavar="STEP", parser_class=_StepParser
    )
    _add_run_parser(steps)
    _add_after_parsers(steps)
    return trials


def _add_run_parser(steps: Any) -> None:
    run = steps.add_parser("run", help="run the trials, then write the tables")
    run.add_argument(
        "experiment", type=source_argument, help="a built-in experiment (see `list`) or a YAML file"
    )
    run.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        metavar="M",
        help="a model: local, openai:<base-url>, sim, ... (repeatable)",
    )
    run.add_argument(
        "--persona",
        dest="personas",
        action="append",
        metavar="P",
        help="a built-in persona or a persona text (repeatable; default truthful-assistant)",
    )
    run.add_argument(
        "--affordance",
        dest="affordances",
        action="append",
        choices=AFFORDANCES,
        help="what the model is told about calling itself (repeatable; default none)",
    )
    run.add_argument("-n", "--trials", type=int, default=10, help="trials per condition (10)")
    run.add_argument("--first-seed", type=int, default=1, help="trial i runs with seed S+i (1)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field for every trial, e.g. --set caps.programs=20 (repeatable)",
    )
    run.add_argument("--pass-k", default="1,5,10", metavar="K,K", help="pass@k columns (1,5,10)")
    run.add_argument(
        "--out", type=path_argument, help="trials directory (default trials/<experiment>)"
    )
    run.add_argument("--parallel", type=int, default=1, help="trials running at once (1)")
    run.add_argument("--ray-address", help="an existing Ray cluster (env SWARMLAB_RAY_ADDRESS)")
    run.add_argument("--redis-url", help="an existing Redis (env SWARMLAB_REDIS_URL)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress output")


def _add_after_parsers(steps: Any) -> None:
    table = steps.add_parser("table", help="rebuild the tables and exports of a trials dir")
    table.add_argument("dir", type=path_argument, help="a trials directory")
    table.add_argument("--json", action="store_true", help="print the summary as JSON")

    annotate = steps.add_parser("annotate", help="a stratified sample for two labellers")
    annotate.add_argument("dir", type=path_argument, help="a trials directory")
    annotate.add_argument("--per-stratum", type=int, default=10, help="units per stratum (10)")
    annotate.add_argument("--labellers", default="a,b", help="two names, e.g. ann,ben (a,b)")
    annotate.add_argument("--seed", type=int, default=0, help="sampling seed (0)")

    agree = steps.add_parser("agreement", help="kappa and detector precision/recall")
    agree.add_argument(
        "dir", type=path_argument, help="a trials directory with an annotation sample"
    )
    agree.add_argument(
        "--labels",
        nargs=2,
        type=path_argument,
        metavar="FILE",
        help="the two labellers' files (default: annotation/labels-<name>.csv)",
    )
    agree.add_argument("--json", action="store_true", help="print the report as JSON")


def trials_command(args: argparse.Namespace) -> int:
    command = {
        "run": _run,
        "table": _table,
        "annotate": _annotate,
        "agreement": _agreement,
    }[args.trials_command]
    return command(args)


def _run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from swarmlab.experiments import TrialsPlan, TrialsRunner, TrialsSpec
    from swarmlab.spec import builtin_experiments, describe_validation_error

    from ._progress import Progress

    if args.trials < 1:
        raise SpecError(f"-n {args.trials}: run at least 1 trial per condition")
    if not 1 <= args.parallel <= MAX_PARALLEL:
        raise SpecError(f"--parallel {args.parallel}: must be from 1 to {MAX_PARALLEL}")
    experiment = args.experiment
    if experiment not in builtin_experiments() and present(experiment):
        experiment = str(Path(experiment).resolve())  # `trials table` may run from elsewhere
    try:
        spec = TrialsSpec(
            experiment=experiment,
            models=args.models,
            personas=args.personas or ["truthful-assistant"],
            affordances=args.affordances or ["none"],
            trials=args.trials,
            first_seed=args.first_seed,
            overrides=args.overrides,
            pass_k=_ks(args.pass_k),
        )
    except ValidationError as exc:
        raise SpecError(f"trials: {describe_validation_error(exc, TrialsSpec)}") from None
    out = args.out or Path("trials") / Path(args.experiment).stem
    runner = TrialsRunner(
        TrialsPlan.create(spec, out),
        redis_url=redis_url_argument(args.redis_url),
        ray_address=ray_address_argument(args.ray_address),
        parallel=args.parallel,
        progress=Progress(quiet=args.quiet),
    )
    return _report_table(runner.run(), spec.pass_k, args.json)


def _table(args: argparse.Namespace) -> int:
    from swarmlab.experiments import TrialsPlan, finish_trials

    plan = TrialsPlan.load(args.dir)
    return _report_table(finish_trials(plan), plan.spec.pass_k, args.json)


def _report_table(summary: dict[str, Any], pass_k: list[int], as_json: bool) -> int:
    from swarmlab.experiments import format_conditions

    if as_json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        print(format_conditions(summary["conditions"], pass_k))
        print(f"tables, trajectories and DATASHEET.md in {summary['out_dir']}")
    statuses = summary["by_status"]
    failed = statuses.get("failed", 0) + statuses.get("killed", 0)
    ran = summary["trials"] - statuses.get("not run", 0)
    if failed:
        print(
            f"swarmlab: {failed} of {ran} trials failed or were killed (left out of the rates; "
            f"their error column says why; run the same command again to retry them)",
            file=sys.stderr,
        )
    return 1 if ran and failed == ran else 0


def _annotate(args: argparse.Namespace) -> int:
    from swarmlab.experiments import TrialsPlan, export_sample

    plan = TrialsPlan.load(args.dir)
    labellers = [name.strip() for name in args.labellers.split(",")]
    done = export_sample(plan, args.per_stratum, labellers, args.seed)
    files = ", ".join(done["files"])
    print(
        f"{done['units']} units from {len(done['strata'])} strata in {done['out_dir']}: "
        f"each labeller fills one of {files} (1 = yes, 0 = no; `-` where a label does not "
        f"apply), then `swarmlab trials agreement {args.dir}`"
    )
    return 0


def _agreement(args: argparse.Namespace) -> int:
    from swarmlab.experiments import agreement, format_agreement

    if not present(args.dir / "trials.yaml"):
        raise SpecError(f"{args.dir}: not a trials directory (no trials.yaml)")
    report = agreement(args.dir, args.labels)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_agreement(report), end="")
    return 0


def _ks(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SpecError(f"--pass-k {text}: expected whole numbers, e.g. --pass-k 1,5,10") from None
    if not ks or min(ks) < 1:
        raise SpecError(f"--pass-k {text}: each k must be at least 1")
    return ks
