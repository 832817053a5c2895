"""The set-up is locked: the locks agree with pyproject.toml, and what is installed is the lock.

scripts/lock.py --check is the rule (scripts/test.sh runs it before the static checks, so those
run only at the locked versions); here it runs on the repository and on copies broken one way
each, so that it is known to fail when it should.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECK = REPO / "scripts" / "lock.py"


def check(project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(CHECK), "--check", "--project", str(project), *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "locks", tmp_path / "locks")
    return tmp_path


def test_the_locks_agree_with_pyproject_and_with_what_is_installed() -> None:
    done = check(REPO)
    assert done.returncode == 0, done.stderr


def test_a_dependency_added_without_relocking_fails(copy: Path) -> None:
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"rich>=13",', '"rich>=13", "tqdm>=4",'))
    done = check(copy, "--no-installed")
    assert done.returncode == 1
    assert "locks/runtime.lock" in done.stderr
    assert done.stderr.count("\n") == 1, "one line"


def test_a_pin_outside_a_requirement_fails(copy: Path) -> None:
    lock = copy / "locks" / "runtime.lock"
    lock.write_text(re.sub(r"(?m)^redis==\S+", "redis==4.6.0", lock.read_text()))
    done = check(copy, "--no-installed")
    assert done.returncode == 1
    assert "'redis>=5'" in done.stderr


def test_an_installed_version_other_than_the_locked_one_fails(copy: Path) -> None:
    lock = copy / "locks" / "test.lock"
    lock.write_text(re.sub(r"(?m)^mypy==\S+", "mypy==1.10.0", lock.read_text()))
    done = check(copy)
    assert done.returncode == 1
    assert re.search(r"mypy \S+ is installed, the locks say 1\.10\.0", done.stderr)


def test_a_package_the_locks_do_not_name_fails(copy: Path) -> None:
    lock = copy / "locks" / "test.lock"
    text = lock.read_text()
    block = re.search(r"(?ms)^hypothesis==\S+ \\\n(?:    --hash=\S+(?: \\)?\n)+", text)
    assert block is not None
    lock.write_text(text.replace(block.group(0), ""))
    done = check(copy)
    assert done.returncode == 1
    assert "hypothesis" in done.stderr
    assert "is installed, the locks say nothing" in done.stderr


def test_setup_installs_from_the_locks_only() -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    lines = [line.strip() for line in setup.split("\n")]
    installs = [line for line in lines if "pipi " in line and not line.startswith("pipi()")]
    assert installs, "no install step found"
    for line in installs:
        assert "--no-deps" in line, line
        assert "--require-hashes" in line or line.endswith("-e ."), line
        assert "-r locks/" in line or line.endswith("-e ."), line
