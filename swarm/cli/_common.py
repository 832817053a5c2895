"""Arguments that `run` and `submit` share: which experiment, and how to change it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from swarmlab.core import SpecError

RUNNER_LENDER: Any = None
"""In the warm lab process (`_warm_server`): spec -> the runners a run borrows; else None."""


def path_argument(text: str) -> Path:
    """A path option's value: an empty one is refused (Path("") is the current directory, which
    no one means by it)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; name a file or a directory")
    return Path(text)


def source_argument(text: str) -> str:
    """A built-in name or a file: never empty."""
    if not text:
        raise argparse.ArgumentTypeError("an empty name; name a built-in one or a file")
    return text


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment",
        type=source_argument,
        help="a built-in experiment (see `list`) or a YAML file",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field, e.g. --set caps.programs=50 (repeatable)",
    )
    parser.add_argument(
        "--model",
        help="model backend, e.g. sim or openai:http://host:8000/v1 (default: the spec's; where "
        "it keeps sim and SWARMLAB_MODEL_URL names a model server, that server)",
    )
    parser.add_argument("--run-id", help="the run's id (default: name-date-time-random)")


def spec_overrides(args: argparse.Namespace) -> list[str]:
    """`--set` items, then `--model` as a string (never read as YAML: `openai:` stays text),
    checked here so that a refusal names the flag the user gave."""
    from swarmlab.spec import model_problem, without_credentials

    overrides = list(args.overrides)
    if args.model is not None:
        problem = model_problem(args.model)
        if problem is not None:
            shown = without_credentials(args.model)  # before the cut, which could lose the '@'
            shown = shown if len(shown) <= 100 else shown[:97] + "..."
            raise SpecError(f"--model {json.dumps(shown)}: {problem}")
        overrides.append("model=" + json.dumps(args.model))
    return overrides


def redis_url_argument(given: str | None, env: bool = True) -> str | None:
    """`--redis-url`, else (with `env`) SWARMLAB_REDIS_URL, checked: a URL redis-py cannot open
    is a one-line exit 2 here rather than a traceback once the run has started."""
    from swarmlab.spec import check_redis_url, env_value

    if given:
        return check_redis_url(given, "--redis-url")
    return env_value("SWARMLAB_REDIS_URL") if env else None


def ray_address_argument(given: str | None) -> str | None:
    """`--ray-address`, else SWARMLAB_RAY_ADDRESS, checked (one line, exit 2, if it cannot
    work)."""
    from swarmlab.spec import check_ray_address, env_value

    if given:
        return check_ray_address(given, "--ray-address")
    return env_value("SWARMLAB_RAY_ADDRESS")


def check_run_arguments(args: argparse.Namespace) -> None:
    """`run`'s arguments that name places: the run id and the run directory."""
    from swarmlab.spec import check_run_id

    if args.run_id is not None:
        check_run_id(args.run_id, "--run-id")
    check_out_dir(args.out)


def check_out_dir(out: Path | None) -> None:
    """`--out` names a directory to write into (or to create), never an existing file."""
    if out is not None and out.exists() and not out.is_dir():
        raise SpecError(f"--out {out}: is a file, not a directory; name a directory to write to")
