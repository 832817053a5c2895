"""An empty path given to any option or argument that names a file or a directory is refused in
one line, exit 2: `Path("")` is the current directory, so `report RUN --out ""` tried to write
over `.` and `run --program ""` ran without the program."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmlab.cli._common import path_argument, source_argument
from swarmlab.cli._main import build_parser, main

PLACES = {"out", "program", "log", "home", "dir", "run", "runs", "run_dir", "labels", "jaeger_json"}
"""Destinations that name a file or a directory."""


def _actions(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.Action]]:
    """Every argument of every command, with the words that reach its command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, (*words, name))
        elif not isinstance(action, argparse._HelpAction):
            yield words, action


ALL = list(_actions(build_parser()))


def test_every_path_argument_refuses_an_empty_path() -> None:
    """A new option naming a place is caught here if it takes its value as it comes."""
    loose = [
        f"{' '.join(words)} {action.dest}"
        for words, action in ALL
        if (action.dest in PLACES or action.metavar in ("FILE", "DIR", "RUN"))
        and action.type not in (path_argument, source_argument)
    ]
    assert loose == []
    assert not [a.dest for _, a in ALL if a.type is Path]


CHECKED = [(w, a) for w, a in ALL if a.type in (path_argument, source_argument)]


@pytest.mark.parametrize(
    ("words", "action"), CHECKED, ids=[f"{' '.join(w)}:{a.dest}" for w, a in CHECKED]
)
def test_an_empty_path_is_one_line_exit_2(
    words: tuple[str, ...], action: argparse.Action, capsys: pytest.CaptureFixture[str]
) -> None:
    count = action.nargs if isinstance(action.nargs, int) else 1
    given = [action.option_strings[0]] if action.option_strings else []
    with pytest.raises(SystemExit) as exited:
        main([*words, *given, *[""] * count])
    said = capsys.readouterr().err.strip().split("\n")
    assert exited.value.code == 2
    assert len(said) == 1, said
    assert said[0].startswith("swarmlab: "), said
    assert "an empty" in said[0], said


def test_report_out_empty_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", str(tmp_path), "--out", ""])
    assert exited.value.code == 2
    assert "argument --out: an empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
