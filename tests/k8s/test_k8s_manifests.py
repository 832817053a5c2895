"""The overlays render with the real kustomize, and what they render is what a cluster accepts
and what the lab needs: schemas, images, wiring of Redis, traces and the model server."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate
import pytest
import ray
import yaml
from helpers.k8s_checks import kuberay_errors
from helpers.k8s_objects import OVERLAYS, REPO, SCHEMAS, find, pod_templates

Rendered = dict[str, list[dict[str, Any]]]
RAY_KINDS = {"RayCluster", "RayService"}
OLDEST_KUBERNETES = "1.30"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_the_whole_deployment(rendered: Rendered, overlay: str) -> None:
    objs = rendered[overlay]
    cluster = find(objs, "RayCluster", "swarmlab")
    groups = [g["groupName"] for g in cluster["spec"]["workerGroupSpecs"]]
    assert groups == ["sandbox-runners"]
    for kind, name in [
        ("Namespace", "swarmlab"),
        ("Deployment", "redis"),
        ("Service", "redis"),
        ("Deployment", "jaeger"),
        ("Service", "jaeger-collector"),
        ("Service", "jaeger-ui"),
        ("Service", "llm"),
        ("NetworkPolicy", "sandbox-runners"),
        ("ConfigMap", "swarmlab-settings"),
    ]:
        find(objs, kind, name)
    namespaced = [o for o in objs if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"swarmlab"}


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, kubernetes_validate.latest_version()])
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_pass_strict_schema_validation(
    rendered: Rendered, overlay: str, version: str
) -> None:
    core = [o for o in rendered[overlay] if o["kind"] not in RAY_KINDS]
    assert core
    for obj in core:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {where} is invalid for Kubernetes {version}: {exc.message}")


def test_strict_validation_catches_a_misspelled_core_field(rendered: Rendered) -> None:
    jaeger = copy.deepcopy(find(rendered["cpu"], "Deployment", "jaeger"))
    jaeger["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="resourcez"):
        kubernetes_validate.validate(jaeger, OLDEST_KUBERNETES, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_objects_match_the_kuberay_schemas(rendered: Rendered, overlay: str) -> None:
    assert (SCHEMAS / "raycluster-ray.io-v1.json").is_file(), f"no KubeRay schemas at {SCHEMAS}"
    ray_objs = [o for o in rendered[overlay] if o["kind"] in RAY_KINDS]
    assert ray_objs
    for obj in ray_objs:
        assert obj["apiVersion"] == "ray.io/v1"
        assert kuberay_errors(obj) == [], f"{obj['kind']}/{obj['metadata']['name']}"


def test_the_kuberay_check_catches_a_misspelled_field(rendered: Rendered) -> None:
    cluster = copy.deepcopy(find(rendered["cpu"], "RayCluster", "swarmlab"))
    cluster["spec"]["workerGroupSpecs"][0]["minReplica"] = 1
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"] = "2"
    errors = kuberay_errors(cluster)
    assert any("minReplica" in e for e in errors), errors
    assert any("resources" in e for e in errors), errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ray_cluster_runs_the_swarmlab_image_at_the_pinned_ray(
    rendered: Rendered, overlay: str
) -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'"ray[default]=={ray.__version__}"' in pyproject
    cluster = find(rendered[overlay], "RayCluster", "swarmlab")
    assert cluster["spec"]["rayVersion"] == ray.__version__
    for where, pod, _ in pod_templates(cluster):
        for c in pod["containers"]:
            assert c["image"].split(":")[0].endswith("swarmlab"), where
    for obj in rendered[overlay]:
        if obj["kind"] == "RayService":
            assert obj["spec"]["rayClusterConfig"]["rayVersion"] == ray.__version__
    dockerfile = (REPO / "k8s" / "images" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "--require-hashes --no-deps -r locks/build.lock -r locks/runtime.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in dockerfile


def _env(container: dict[str, Any]) -> list[dict[str, Any]]:
    return list(container.get("env", []))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_password_comes_from_a_secret_and_reaches_the_ray_pods(
    rendered: Rendered, overlay: str
) -> None:
    objs = rendered[overlay]
    assert not [o for o in objs if o["kind"] == "Secret"], "no password may live in the manifests"
    redis = find(objs, "Deployment", "redis")["spec"]["template"]["spec"]["containers"][0]
    password = next(e for e in _env(redis) if e["name"] == "REDIS_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"] == {"name": "redis-auth", "key": "password"}
    assert "requirepass ${REDIS_PASSWORD}" in redis["args"][0]
    cluster = find(objs, "RayCluster", "swarmlab")
    for where, pod, _ in pod_templates(cluster):
        env = _env(pod["containers"][0])
        names = [e["name"] for e in env]
        url = next(e for e in env if e["name"] == "SWARMLAB_REDIS_URL")
        assert url["value"] == "redis://:$(REDIS_PASSWORD)@redis:6379/0", where
        # $(VAR) only expands a variable defined earlier in the list.
        assert names.index("REDIS_PASSWORD") < names.index("SWARMLAB_REDIS_URL"), where
        assert env[names.index("REDIS_PASSWORD")]["valueFrom"]["secretKeyRef"]["name"] == (
            "redis-auth"
        )


def _redis_conf(objs: list[dict[str, Any]]) -> dict[str, str]:
    text = find(objs, "ConfigMap", "redis-config")["data"]["redis.conf"]
    pairs = (line.split(None, 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_redis_persistence_is_a_setting(rendered: Rendered) -> None:
    off, on = _redis_conf(rendered["cpu"]), _redis_conf(rendered["gpu"])
    assert off["appendonly"] == "no"
    assert off["save"] == '""'
    assert on["appendonly"] == "yes"
    for overlay, volume_kind in [("cpu", "emptyDir"), ("gpu", "persistentVolumeClaim")]:
        pod = find(rendered[overlay], "Deployment", "redis")["spec"]["template"]["spec"]
        data = next(v for v in pod["volumes"] if v["name"] == "data")
        assert volume_kind in data, overlay
    claim = find(rendered["gpu"], "PersistentVolumeClaim", "redis-data")
    assert claim["spec"]["resources"]["requests"]["storage"]
    for objs in rendered.values():
        assert _redis_conf(objs)["maxmemory-policy"] == "noeviction"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_traces_go_to_jaeger_v2_over_otlp(rendered: Rendered, overlay: str) -> None:
    objs = rendered[overlay]
    settings = find(objs, "ConfigMap", "swarmlab-settings")["data"]
    endpoint = settings["OTEL_EXPORTER_OTLP_ENDPOINT"]
    host, port = endpoint.removeprefix("http://").split(":")
    collector = find(objs, "Service", host)
    assert int(port) in {p["port"] for p in collector["spec"]["ports"]}
    assert {4317, 4318} <= {p["port"] for p in collector["spec"]["ports"]}
    assert 16686 in {p["port"] for p in find(objs, "Service", "jaeger-ui")["spec"]["ports"]}
    jaeger = find(objs, "Deployment", "jaeger")["spec"]["template"]["spec"]["containers"][0]
    assert jaeger["image"].startswith("jaegertracing/jaeger:2.")
    config = yaml.safe_load(find(objs, "ConfigMap", "jaeger-config")["data"]["config.yaml"])
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"].endswith(":16686")
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    cluster = find(objs, "RayCluster", "swarmlab")
    for where, pod, _ in pod_templates(cluster):
        refs = [e["configMapRef"]["name"] for e in pod["containers"][0].get("envFrom", [])]
        assert "swarmlab-settings" in refs, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_selects_pods_of_the_overlay(rendered: Rendered, overlay: str) -> None:
    objs = rendered[overlay]
    pods = [labels for obj in objs for _, _, labels in pod_templates(obj)]
    for svc in (o for o in objs if o["kind"] == "Service"):
        # KubeRay adds the ray.io/* labels to the pods it creates.
        selector = {k: v for k, v in svc["spec"]["selector"].items() if not k.startswith("ray.io/")}
        assert any(selector.items() <= labels.items() for labels in pods), svc["metadata"]["name"]


def _serve_llm_config(objs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    service = find(objs, "RayService", "swarmlab-llm")
    serve = yaml.safe_load(service["spec"]["serveConfigV2"])
    (app,) = serve["applications"]
    assert app["import_path"] == "ray.serve.llm:build_openai_app"
    (llm,) = app["args"]["llm_configs"]
    return service, llm


def test_gpu_model_is_served_by_ray_serve_llm_on_a_gpu_worker_group(rendered: Rendered) -> None:
    objs = rendered["gpu"]
    service, llm = _serve_llm_config(objs)
    settings = find(objs, "ConfigMap", "swarmlab-settings")["data"]
    assert llm["model_loading_config"]["model_id"] == settings["SWARMLAB_MODEL_NAME"]
    assert llm["model_loading_config"]["model_source"]
    engine = llm["engine_kwargs"]
    assert isinstance(engine["max_model_len"], int)
    assert engine["max_model_len"] > 0
    (gpu_group,) = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert gpu_group["groupName"] == "vllm-gpu"
    limits = gpu_group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) == engine["tensor_parallel_size"]
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert settings["SWARMLAB_MODEL_URL"] == "http://llm:8000/v1"


def test_cpu_model_is_smollm_served_by_vllm_serve(rendered: Rendered) -> None:
    objs = rendered["cpu"]
    assert not [o for o in objs if o["kind"] == "RayService"]
    assert "nvidia.com/gpu" not in yaml.safe_dump_all(objs)
    pod = find(objs, "Deployment", "llm")["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    assert server["command"] == ["vllm", "serve"]
    args = " ".join(server["args"])
    for flag in (
        "$(MODEL_SOURCE)",
        "--tensor-parallel-size=$(TENSOR_PARALLEL_SIZE)",
        "--max-model-len=$(MAX_MODEL_LEN)",
        "--served-model-name=$(MODEL_ID)",
        "--port=8000",
        "--otlp-traces-endpoint=$(OTLP_TRACES_ENDPOINT)",
    ):
        assert flag in args
    settings = find(objs, "ConfigMap", "llm-settings")["data"]
    assert settings["MODEL_SOURCE"].endswith("SmolLM2-135M-Instruct")
    assert int(settings["TENSOR_PARALLEL_SIZE"]) >= 1
    assert int(settings["MAX_MODEL_LEN"]) > 0
    swarm = find(objs, "ConfigMap", "swarmlab-settings")["data"]
    assert settings["MODEL_ID"] == swarm["SWARMLAB_MODEL_NAME"]
    assert [e["configMapRef"]["name"] for e in server["envFrom"]] == ["llm-settings"]
    dockerfile = (REPO / "k8s" / "images" / "Dockerfile.vllm").read_text()
    assert "ARG VLLM_CPU_IMAGE=vllm/vllm-openai-cpu:" in dockerfile
    assert "FROM ${VLLM_CPU_IMAGE} AS vllm-cpu" in dockerfile
    assert "FROM ${RAY_LLM_IMAGE} AS ray-llm" in dockerfile


def test_runners_advertise_the_resource_the_settings_name(rendered: Rendered) -> None:
    for objs in rendered.values():
        resource = find(objs, "ConfigMap", "swarmlab-settings")["data"]["SWARMLAB_RUNNER_RESOURCE"]
        cluster = find(objs, "RayCluster", "swarmlab")
        runners = cluster["spec"]["workerGroupSpecs"][0]["rayStartParams"]["resources"]
        assert json.loads(json.loads(runners))[resource] > 0
        assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
