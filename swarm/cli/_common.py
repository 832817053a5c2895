"""Arguments that `run` and `submit` share: which experiment, and how to change it."""

from __future__ import annotations

import argparse


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="a built-in experiment (see `list`) or a YAML file")
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
