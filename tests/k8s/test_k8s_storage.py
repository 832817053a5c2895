"""What outlives the pods on a cluster: the run directories (on a claim at SWARMLAB_RUNS_DIR, so
that `swarmlab fetch` finds a run after the head pod is gone), Jaeger's traces (Badger on a
claim, not memory), and the released KubeRay whose schemas the manifests are checked against."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from helpers.k8s_objects import OVERLAYS, REPO, find
from packaging.version import Version

Rendered = dict[str, list[dict[str, Any]]]
AUTH_OPTIONS_SINCE = Version("1.5.1")


def _claimed_at(pod: dict[str, Any], container: dict[str, Any], path: str) -> str | None:
    """The claim mounted at `path` in the container (None: not on a claim)."""
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in container.get("volumeMounts", [])}
    name = next((n for at, n in mounts.items() if path == at or path.startswith(at + "/")), None)
    volume: dict[str, Any] = next((v for v in pod.get("volumes", []) if v["name"] == name), {})
    claim = volume.get("persistentVolumeClaim") or {}
    return claim.get("claimName")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_run_directories_outlive_the_head_pod(rendered: Rendered, overlay: str) -> None:
    objs = rendered[overlay]
    runs_dir = find(objs, "ConfigMap", "swarmlab-settings")["data"]["SWARMLAB_RUNS_DIR"]
    head = find(objs, "RayCluster", "swarmlab")["spec"]["headGroupSpec"]["template"]["spec"]
    claim = _claimed_at(head, head["containers"][0], runs_dir)
    assert claim is not None, f"{runs_dir} on the head is not on a PersistentVolumeClaim"
    pvc = find(objs, "PersistentVolumeClaim", claim)
    assert "ReadWriteOnce" in pvc["spec"]["accessModes"]
    assert pvc["spec"]["resources"]["requests"]["storage"]
    # The head writes as its non-root user: the claim's files must be its group's.
    assert head["securityContext"]["fsGroup"] == head["containers"][0]["securityContext"].get(
        "runAsGroup", head["securityContext"]["runAsGroup"]
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_jaeger_keeps_traces_in_badger_on_a_claim(rendered: Rendered, overlay: str) -> None:
    objs = rendered[overlay]
    config = yaml.safe_load(find(objs, "ConfigMap", "jaeger-config")["data"]["config.yaml"])
    storage = config["extensions"]["jaeger_storage"]["backends"]
    used = config["exporters"]["jaeger_storage_exporter"]["trace_storage"]
    assert config["extensions"]["jaeger_query"]["storage"]["traces"] == used
    assert set(storage[used]) == {"badger"}, "the traces' store is not Badger"
    badger = storage[used]["badger"]
    assert badger["ephemeral"] is False
    pod = find(objs, "Deployment", "jaeger")["spec"]["template"]["spec"]
    for kind in ("keys", "values"):
        claim = _claimed_at(pod, pod["containers"][0], badger["directories"][kind])
        assert claim is not None, f"Badger's {kind} are not on a PersistentVolumeClaim"
        assert find(objs, "PersistentVolumeClaim", claim)["spec"]["resources"]["requests"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    assert find(objs, "Deployment", "jaeger")["spec"]["strategy"]["type"] == "Recreate"


def test_the_kuberay_schemas_are_a_released_version_the_docs_install() -> None:
    vendored = REPO / "tests" / "data" / "kuberay"  # SWARMLAB_K8S_SCHEMAS may point elsewhere
    found = re.search(r"release tag `v(\d+\.\d+\.\d+)`", (vendored / "README.md").read_text())
    assert found, f"{vendored}/README.md names no KubeRay release tag"
    version = Version(found[1])
    assert version >= AUTH_OPTIONS_SINCE, f"KubeRay {version} has no authOptions"
    deploy = (REPO / "docs" / "deploy.md").read_text()
    assert f"kuberay/kuberay-operator --version {version}" in deploy
    assert f"least **{AUTH_OPTIONS_SINCE}**" in deploy
    assert "kubectl -n kuberay-system get deployment kuberay-operator" in deploy
