"""A path a command reads that holds something other than a regular file (a FIFO, a directory)
is refused as such, in one line: never read (a FIFO would block), never called missing.

The class: a command that checked `path.is_file()` before reading said "no such file" of a FIFO
or a directory that was there. Commands now ask `swarmlab.core.present` and leave what is there
to the reader; a scan of the lab's source finds any new `is_file()` check that raises."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import one_line_error, swarmlab
from helpers.labelled_run import write_run_dir

ROOT = Path(__file__).resolve().parents[2]


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


Make = Callable[[Path], Path]


def _run_file(tmp: Path, make: Make) -> list[str]:
    return ["run", str(make(tmp / "exp.yaml"))]


def _program(tmp: Path, make: Make) -> list[str]:
    return ["run", "paperclips", "--program", str(make(tmp / "story.py"))]


def _sweep(tmp: Path, make: Make) -> list[str]:
    return ["sweep", str(make(tmp / "sweep.yaml"))]


def _report_programs(tmp: Path, make: Make) -> list[str]:
    run = write_run_dir(tmp / "run")
    (run / "programs.jsonl").unlink()
    make(run / "programs.jsonl")
    return ["report", str(run)]


def _report_summary(tmp: Path, make: Make) -> list[str]:
    run = write_run_dir(tmp / "run")
    (run / "summary.json").unlink()
    make(run / "summary.json")
    return ["report", str(run), "--json"]


def _traces(tmp: Path, make: Make) -> list[str]:
    run = write_run_dir(tmp / "run")
    (run / "traces.jsonl").unlink()
    make(run / "traces.jsonl")
    return ["traces", str(run), "--jaeger-json", str(tmp / "t.json")]


def _trials_table(tmp: Path, make: Make) -> list[str]:
    (tmp / "trials").mkdir()
    make(tmp / "trials" / "trials.yaml")
    return ["trials", "table", str(tmp / "trials")]


COMMANDS = [_run_file, _program, _sweep, _report_programs, _report_summary, _traces, _trials_table]


@pytest.mark.parametrize("make", [_fifo, _dir], ids=["fifo", "directory"])
@pytest.mark.parametrize("command", COMMANDS, ids=[c.__name__.strip("_") for c in COMMANDS])
def test_a_fifo_or_a_directory_is_refused_as_not_a_regular_file(
    tmp_path: Path, command: Callable[[Path, Make], list[str]], make: Make
) -> None:
    done = swarmlab(*command(tmp_path, make), timeout=60)
    one_line_error(done, 2, "not a regular file")


def _raising_is_file_checks(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.If):
            continue
        checks = [
            n
            for n in ast.walk(node.test)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "is_file"
        ]
        raises = any(isinstance(x, ast.Raise) for stmt in node.body for x in ast.walk(stmt))
        if checks and raises:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node.test)}")
    return found


def test_no_command_refuses_a_path_by_is_file() -> None:
    sources = [
        p for d in ("swarm", "models", "cluster", "observability") for p in (ROOT / d).rglob("*.py")
    ]
    assert len(sources) > 100
    found = [hit for path in sources for hit in _raising_is_file_checks(path)]
    assert found == [], "ask swarmlab.core.present(path), and let the reader refuse what is there"
