"""Checks that the rendered deployment would do what the docs say, beyond schemas: Ray's token
authentication, `ray start` parameters Ray knows, probes and Services that reach a listening
port, gVisor under the runners, GPU workers that fit their documented node and their model, and
the lab's settings naming what the overlay serves. `all_checks` runs every check of this file,
k8s_policy.py, k8s_flows.py and k8s_software.py; each returns its problems (none: it holds)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema

from helpers.k8s_flows import check_flows
from helpers.k8s_network import listening, named_port, resolve, serve_config
from helpers.k8s_objects import SCHEMAS, Objects, Pod, find, find_all, pods, runtime_class
from helpers.k8s_policy import check_limits, check_sandbox_network, check_sandbox_pods
from helpers.k8s_software import check_jaeger, check_serve_config, check_vllm_serve_flags

RAY_KINDS = {"RayCluster": "raycluster", "RayService": "rayservice"}
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class NodeShape:
    """What one node leaves for the deployment's pods: allocatable (after the kubelet's and the
    system's reservations) minus the usual daemon pods (CNI, kube-proxy, GPU plugin, logging)."""

    name: str
    cpu: float
    memory_gib: float
    gpus: int = 0
    gpu_memory_gb: float = 0.0


NODE_SHAPES = {
    "gpu": NodeShape(
        "8 vCPU, 32 GiB, one 24 GB GPU", cpu=7.2, memory_gib=26, gpus=1, gpu_memory_gb=24
    ),
    "cpu": NodeShape("4 vCPU, 16 GiB", cpu=3.5, memory_gib=12),
    "laptop": NodeShape("one kind or minikube node, 8 CPUs and 16 GiB free", cpu=8, memory_gib=16),
}


# --- Ray --------------------------------------------------------------------------------------


def ray_clusters(objs: Objects) -> list[tuple[str, dict[str, Any]]]:
    found = [
        (f"RayCluster/{o['metadata']['name']}", o["spec"]) for o in find_all(objs, "RayCluster")
    ]
    found += [
        (f"RayService/{o['metadata']['name']}", o["spec"]["rayClusterConfig"])
        for o in find_all(objs, "RayService")
    ]
    return found


def check_auth(objs: Objects) -> list[str]:
    """Ray's token authentication on every Ray cluster (KubeRay generates the token)."""
    bad = []
    for where, cluster in ray_clusters(objs):
        if (cluster.get("authOptions") or {}).get("mode") != "token":
            bad.append(f"{where}: authOptions.mode is not token: anyone who reaches it runs code")
    return bad


@cache
def ray_start_options() -> frozenset[str]:
    from ray.scripts.scripts import start

    return frozenset(o[2:] for p in start.params for o in p.opts if o.startswith("--"))


def check_ray_start_params(objs: Objects) -> list[str]:
    known = ray_start_options()
    return [
        f"{pod.where}: rayStartParams {key!r} is not an option of `ray start`"
        for pod in pods(objs)
        if pod.ray_params is not None
        for key in pod.ray_params
        if key not in known
    ]


@cache
def kuberay_schema(kind: str) -> dict[str, Any]:
    """KubeRay's schema for a kind, made strict the way the API server is with kubectl apply:
    fields that the schema does not list are errors, not silently dropped."""
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{RAY_KINDS[kind]}-ray.io-v1.json").read_text())

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


@cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(kuberay_schema(kind))


def kuberay_errors(obj: dict[str, Any]) -> list[str]:
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = _validator(obj["kind"])
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    return [
        f"{where} {'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(body)
    ]


def check_kuberay_schemas(objs: Objects) -> list[str]:
    return [e for obj in objs if obj["kind"] in RAY_KINDS for e in kuberay_errors(obj)]


# --- probes and Services ------------------------------------------------------------------------

# What answers these health paths: the Ray dashboard, its agent, vLLM's server, Jaeger's UI.
PROBE_PATHS = {
    "/api/gcs_healthz": lambda pod: int((pod.ray_params or {}).get("dashboard-port", 8265)),
    "/api/local_raylet_healthz": lambda pod: int(
        (pod.ray_params or {}).get("dashboard-agent-listen-port", 52365)
    ),
}


def check_probes(objs: Objects) -> list[str]:
    bad = []
    for pod in pods(objs):
        ports = {p for _, p in listening(objs, pod)}
        for c in pod.spec.get("containers", []):
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = c.get(kind) or {}
                action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
                if not action:
                    continue
                where = f"{pod.where} {c['name']} {kind}"
                port = action.get("port")
                number = named_port(pod, port) if isinstance(port, str) else port
                if number is None:
                    bad.append(f"{where}: port {port!r} names no container port")
                elif number not in ports:
                    bad.append(f"{where}: nothing listens on port {number}")
                expected = PROBE_PATHS.get((probe.get("httpGet") or {}).get("path", ""))
                if expected and number != expected(pod):
                    bad.append(
                        f"{where}: {action['path']} is served on {expected(pod)}, not {number}"
                    )
    return bad


def check_services(objs: Objects) -> list[str]:
    bad = []
    for svc in find_all(objs, "Service"):
        name = svc["metadata"]["name"]
        for port in svc["spec"].get("ports", []):
            bad += resolve(objs, f"http://{name}:{port['port']}")[1]
    for pod in pods(objs):
        ports = {p for _, p in listening(objs, pod)}
        for declared in (p for c in pod.spec.get("containers", []) for p in c.get("ports", [])):
            if int(declared["containerPort"]) not in ports:
                bad.append(
                    f"{pod.where}: declares port {declared['containerPort']}, nothing binds it"
                )
    return bad


# --- gVisor -------------------------------------------------------------------------------------


def check_gvisor(objs: Objects) -> list[str]:
    bad = [
        f"RuntimeClass/{o['metadata']['name']} is in the overlay: `kubectl delete -k` would delete "
        "a cluster-wide object other workloads may use (create it from k8s/cluster/ instead)"
        for o in find_all(objs, "RuntimeClass")
    ]
    runtime = runtime_class()
    if runtime.get("handler") != "runsc":
        bad.append("the gVisor RuntimeClass's handler is not runsc")
    if not (runtime.get("scheduling") or {}).get("nodeSelector"):
        bad.append("the gVisor RuntimeClass has no scheduling: runners could land without runsc")
    if not {"cpu", "memory"} <= set(((runtime.get("overhead") or {}).get("podFixed")) or {}):
        bad.append("the gVisor RuntimeClass has no CPU and memory overhead")
    for pod in pods(objs):
        is_runner = pod.labels.get("app.kubernetes.io/component") == "sandbox-runner"
        if is_runner and pod.spec.get("runtimeClassName") != runtime["metadata"]["name"]:
            bad.append(f"{pod.where}: sandbox runners are not under gVisor (runtimeClassName)")
    return bad


# --- resources ----------------------------------------------------------------------------------


def cpu(value: Any) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def gib(value: Any) -> float:
    text = str(value)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor / 2**30
    return float(text) / 2**30


def pod_requests(pod: Pod) -> tuple[float, float, int]:
    """(CPUs, GiB, GPUs) the scheduler reserves for a pod, RuntimeClass overhead included."""
    c_cpu = c_mem = 0.0
    gpus = 0
    for c in pod.spec.get("containers", []):
        requests = (c.get("resources") or {}).get("requests") or {}
        c_cpu += cpu(requests.get("cpu", 0))
        c_mem += gib(requests.get("memory", 0))
        gpus += int(requests.get(GPU, 0))
    if pod.spec.get("runtimeClassName"):
        overhead = (runtime_class().get("overhead") or {}).get("podFixed") or {}
        c_cpu += cpu(overhead.get("cpu", 0))
        c_mem += gib(overhead.get("memory", 0))
    return c_cpu, c_mem, gpus


def check_node_shapes(objs: Objects, overlay: str) -> list[str]:
    bad, total = [], [0.0, 0.0]
    for pod in pods(objs):
        c_cpu, c_mem, gpus = pod_requests(pod)
        shape = NODE_SHAPES["laptop" if overlay == "cpu" else "gpu" if gpus else "cpu"]
        if c_cpu > shape.cpu or c_mem > shape.memory_gib or gpus > shape.gpus:
            bad.append(
                f"{pod.where} asks {c_cpu:g} CPU, {c_mem:g} GiB, {gpus} GPU: more than a node of "
                f"{shape.name} leaves ({shape.cpu:g} CPU, {shape.memory_gib:g} GiB)"
            )
        total = [total[0] + c_cpu * pod.replicas, total[1] + c_mem * pod.replicas]
    laptop = NODE_SHAPES["laptop"]
    if overlay == "cpu" and (total[0] > laptop.cpu or total[1] > laptop.memory_gib):
        bad.append(
            f"the cpu overlay asks {total[0]:g} CPU, {total[1]:g} GiB: more than {laptop.name}"
        )
    return bad


def model_weights_gb(model: str) -> float | None:
    """A model's weights in bfloat16, from the parameter count in its name (7B: ~15 GB)."""
    found = re.findall(r"(?<![\d.])(\d+(?:\.\d+)?)B(?![a-z])", model)
    return float(found[-1]) * 2.2 if found else None


def check_gpu_workers(objs: Objects) -> list[str]:
    bad = []
    for service in find_all(objs, "RayService"):
        llms = [
            llm
            for app in (serve_config(service) or {}).get("applications") or []
            for llm in (app.get("args") or {}).get("llm_configs") or []
        ]
        for group in service["spec"]["rayClusterConfig"].get("workerGroupSpecs", []):
            bad += _gpu_group_problems(group, llms)
    return bad


def _gpu_group_problems(group: dict[str, Any], llms: list[dict[str, Any]]) -> list[str]:
    where = f"RayService worker group {group['groupName']}"
    spec = group["template"]["spec"]
    (worker,) = spec["containers"]
    resources = worker.get("resources") or {}
    gpus = int((resources.get("limits") or {}).get(GPU, 0))
    if not gpus:
        return [f"{where}: asks for no {GPU}"]
    bad = []
    if int((resources.get("requests") or {}).get(GPU, gpus)) != gpus:
        bad.append(f"{where}: {GPU} requests and limits differ")
    tolerated = any(
        t.get("key") == GPU
        and t.get("operator", "Equal") in ("Exists", "Equal")
        and t.get("effect") in (None, "NoSchedule")
        for t in spec.get("tolerations") or []
    )
    if not tolerated:
        bad.append(f"{where}: does not tolerate the {GPU}:NoSchedule taint of GPU nodes")
    shm: dict[str, Any] = next(
        (v["emptyDir"] for v in spec.get("volumes", []) if v["name"] == "dshm"), {}
    )
    memory = gib((resources.get("limits") or {}).get("memory", 0))
    for llm in llms:
        engine = llm.get("engine_kwargs") or {}
        if int(engine.get("tensor_parallel_size", 1)) != gpus:
            bad.append(
                f"{where}: tensor_parallel_size {engine.get('tensor_parallel_size')} != {gpus} GPUs"
            )
        weights = model_weights_gb(str((llm.get("model_loading_config") or {}).get("model_source")))
        if weights is None:
            continue
        floor = weights * 1e9 / 2**30 + gib(shm.get("sizeLimit", 0)) + 2
        if memory < floor:
            bad.append(
                f"{where}: {memory:g} GiB cannot load ~{weights:.0f} GB of weights "
                f"(needs {floor:.0f})"
            )
        usable = NODE_SHAPES["gpu"].gpu_memory_gb * float(engine.get("gpu_memory_utilization", 0.9))
        if weights > usable * gpus:
            bad.append(
                f"{where}: ~{weights:.0f} GB of weights exceed {usable:.1f} GB of GPU memory"
            )
    return bad


# --- the lab's settings -----------------------------------------------------------------------


def check_model_settings(objs: Objects) -> list[str]:
    settings = find(objs, "ConfigMap", "swarmlab-settings")["data"]
    served = [
        str((llm.get("model_loading_config") or {}).get("model_id"))
        for service in find_all(objs, "RayService")
        for app in (serve_config(service) or {}).get("applications") or []
        for llm in (app.get("args") or {}).get("llm_configs") or []
    ]
    served += [
        str(cm["data"]["MODEL_ID"])
        for cm in find_all(objs, "ConfigMap")
        if cm["metadata"]["name"] == "llm-settings"
    ]
    if settings.get("SWARMLAB_MODEL_NAME") not in served:
        return [
            f"SWARMLAB_MODEL_NAME {settings.get('SWARMLAB_MODEL_NAME')!r} is not served ({served})"
        ]
    return []


def all_checks(objs: Objects, overlay: str) -> list[str]:
    return [
        *check_limits(objs),
        *check_sandbox_pods(objs),
        *check_sandbox_network(objs),
        *check_flows(objs),
        *check_auth(objs),
        *check_ray_start_params(objs),
        *check_kuberay_schemas(objs),
        *check_probes(objs),
        *check_services(objs),
        *check_gvisor(objs),
        *check_node_shapes(objs, overlay),
        *check_gpu_workers(objs),
        *check_model_settings(objs),
        *check_serve_config(objs),
        *check_vllm_serve_flags(objs),
        *check_jaeger(objs),
    ]
