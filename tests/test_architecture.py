"""The architecture's rules hold, and the check that enforces them fails when they are broken.

The rules live in pyproject.toml (`[tool.swarmlab.architecture]`); scripts/check_architecture.py
checks them. Here it runs on the repository, then on copies with one rule broken each.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECK = REPO / "scripts" / "check_architecture.py"
SOURCES = ("pyproject.toml", "swarm", "models", "cluster", "observability")
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q")


def check(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), str(project)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The sources and pyproject.toml, copied: break them freely."""
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    return tmp_path


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_the_repository_keeps_every_rule() -> None:
    done = check(REPO)
    assert done.returncode == 0, done.stdout
    assert "architecture ok" in done.stdout


def test_an_upward_import_breaks_the_layers(copy: Path) -> None:
    append(copy / "swarm" / "core" / "_lineage.py", "\nfrom swarmlab.records import Event\n")
    done = check(copy)
    assert done.returncode == 1
    assert "layers: swarmlab.core._lineage imports swarmlab.records" in done.stdout


def test_the_runtime_may_not_read_the_analysis(copy: Path) -> None:
    append(
        copy / "swarm" / "runtime" / "_seeds.py",
        "\ndef _late() -> None:\n    from swarmlab.observability.analysis import analyze_run\n",
    )
    done = check(copy)
    assert done.returncode == 1
    assert "independence: swarmlab.runtime._seeds imports swarmlab.observability.analysis" in (
        done.stdout
    )


def test_siblings_of_one_layer_stay_independent(copy: Path) -> None:
    append(copy / "models" / "_base.py", "\nfrom swarmlab.world import World\n")
    assert "same layer" in check(copy).stdout


def test_a_cycle_between_modules_is_found(copy: Path) -> None:
    append(copy / "swarm" / "runtime" / "_seeds.py", "\nfrom . import _waiting\n")
    append(copy / "swarm" / "runtime" / "_waiting.py", "\nfrom . import _seeds\n")
    done = check(copy)
    assert "cycle between modules: swarmlab.runtime._seeds -> swarmlab.runtime._waiting" in (
        done.stdout
    )


def test_a_cycle_between_packages_is_found(copy: Path) -> None:
    append(copy / "swarm" / "spec" / "_caps.py", "\nimport swarmlab.records\n")
    assert "cycle between packages: swarmlab.records -> swarmlab.spec" in check(copy).stdout


def test_sweeps_and_trials_never_import_each_other(copy: Path) -> None:
    append(
        copy / "swarm" / "experiments" / "trials" / "_table.py",
        "\ndef _late() -> None:\n    from swarmlab.experiments.sweeps._cells import METRICS\n",
    )
    done = check(copy)
    assert done.returncode == 1
    assert (
        "layers: swarmlab.experiments.trials._table imports swarmlab.experiments.sweeps._cells "
        "(same layer: independent)"
    ) in done.stdout


@pytest.mark.parametrize(
    ("module", "dependency"),
    [
        ("swarm/runtime/_seeds.py", "ray"),
        ("swarm/runtime/_seeds.py", "pydantic_monty"),
        ("swarm/runtime/_seeds.py", "opentelemetry.sdk.trace"),
        ("observability/telemetry/_genai.py", "opentelemetry.exporter.otlp"),
        ("swarm/spec/_caps.py", "redis"),
        ("models/_openai.py", "vllm"),
    ],
)
def test_a_heavy_dependency_outside_its_home_is_refused(
    copy: Path, module: str, dependency: str
) -> None:
    append(copy / module, f"\n\ndef _late() -> None:\n    import {dependency}\n")
    done = check(copy)
    assert done.returncode == 1
    assert f"imports {dependency.split('.')[0]}" in done.stdout


def test_a_long_function_and_a_long_module_are_refused(copy: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(70))
    append(copy / "swarm" / "core" / "_lineage.py", f"\n\ndef _long() -> None:\n{body}")
    append(copy / "swarm" / "core" / "_bounds.py", "\n" * 520)
    done = check(copy)
    assert "sizes: swarmlab.core._lineage._long has 71 lines (at most 60)" in done.stdout
    assert "sizes: swarmlab.core._bounds has" in done.stdout


def test_the_wheel_installs_one_import_name(
    copy: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Built from a copy: setuptools reuses a checkout's build/ folder, which could hold stale
    # files, and the build leaves nothing behind in the checkout.
    shutil.copy(REPO / "README.md", copy / "README.md")
    tmp_path = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [*PIP_WHEEL[:-1], "-v", "-w", str(tmp_path), str(copy)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # Package data is declared as data: setuptools has nothing to warn about.
    warned = re.findall(r"\w+Warning\b.*|.*would be ignored.*", done.stdout + done.stderr)
    assert not warned, warned
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"swarmlab"}
    # Every module and data file of the layout travels in the wheel: a sub-package or a data
    # file the package list or the package data forgets is found, whichever it is.
    missing = sorted(set(layout_files()) - set(names))
    assert not missing, missing
    assert "swarmlab/experiments/trials/datasheet.md" in names


def layout_files() -> list[str]:
    """The committed files of the installed layout, by their path inside the wheel."""
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    files = []
    for package, folder in mapping.items():
        listed = subprocess.run(
            ["git", "ls-files", folder], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split("\n")
        inside = package.replace(".", "/")
        files += [inside + f.removeprefix(folder) for f in listed if f]
    return files


def test_the_layout_has_modules_and_data_to_check() -> None:
    files = layout_files()
    assert "swarmlab/experiments/sweeps/pumping-curve.yaml" in files
    assert "swarmlab/experiments/trials/_runner.py" in files
    assert "swarmlab/runtime/lua/claim.lua" in files


def test_the_release_build_ignores_a_stale_build_folder(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    (clone / ".venv").symlink_to(Path(sys.executable).parent.parent)
    stale = clone / "build" / "lib" / "swarmlab" / "stale_module.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("LEFT_OVER = True\n")
    done = subprocess.run(
        ["bash", str(clone / "scripts" / "build.sh"), str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("swarmlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "swarmlab/runtime/lua/claim.lua" in names
    assert not [n for n in names if "stale_module" in n]


def test_the_editable_build_warns_of_nothing(
    copy: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The editable install's build (PEP 660, as pip runs it) with the set-up's one filter: the
    filtered note is setuptools' caution about a folder named like the package in the working
    directory, and there is none."""
    assert not (REPO / "swarmlab").exists()
    shutil.copy(REPO / "README.md", copy / "README.md")
    setup = (REPO / "scripts" / "setup.sh").read_text()
    found = re.search(r'^EDITABLE_QUIET="([^"]+)"$', setup, re.M)
    assert found is not None
    out = tmp_path_factory.mktemp("editable")
    build = f"from setuptools import build_meta; build_meta.build_editable({str(out)!r})"
    done = subprocess.run(
        [sys.executable, "-c", build],
        cwd=copy,
        env={**os.environ, "PYTHONWARNINGS": found[1]},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    warned = re.findall(r"(?m)^\S+:\d+: \w+: .*", done.stderr)
    assert not warned, warned
