"""Breaking edits that a reviewer, a typo or a hurried fix would make to the rendered manifests.
Each one would break the deployment (or open the sandbox), and each must fail a check."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from helpers.k8s_checks import all_checks
from helpers.k8s_objects import Objects, find

Rendered = dict[str, Objects]
Spec = dict[str, Any]


def _np(objs: Objects, name: str) -> Spec:
    spec: Spec = find(objs, "NetworkPolicy", name)["spec"]
    return spec


def _component(name: str) -> Spec:
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/component": name}}}


def _cluster(objs: Objects) -> Spec:
    spec: Spec = find(objs, "RayCluster", "swarmlab")["spec"]
    return spec


def _runner(objs: Objects) -> Spec:
    container: Spec = _cluster(objs)["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    return container


def _head(objs: Objects) -> Spec:
    container: Spec = _cluster(objs)["headGroupSpec"]["template"]["spec"]["containers"][0]
    return container


def _service(objs: Objects) -> Spec:
    spec: Spec = find(objs, "RayService", "swarmlab-llm")["spec"]
    return spec


def _gpu_pod(objs: Objects) -> Spec:
    pod: Spec = _service(objs)["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    return pod


def _edit_yaml(holder: Spec, key: str, change: Callable[[Spec], None]) -> None:
    document = yaml.safe_load(holder[key])
    change(document)
    holder[key] = yaml.safe_dump(document)


def _serve(objs: Objects, change: Callable[[Spec], None]) -> None:
    _edit_yaml(_service(objs), "serveConfigV2", change)


def _llm(config: Spec) -> Spec:
    llm: Spec = config["applications"][0]["args"]["llm_configs"][0]
    return llm


def _jaeger(objs: Objects, change: Callable[[Spec], None]) -> None:
    _edit_yaml(find(objs, "ConfigMap", "jaeger-config")["data"], "config.yaml", change)


def _settings(objs: Objects) -> Spec:
    data: Spec = find(objs, "ConfigMap", "swarmlab-settings")["data"]
    return data


def _vllm_cpu(objs: Objects) -> Spec:
    container: Spec = find(objs, "Deployment", "llm")["spec"]["template"]["spec"]["containers"][0]
    return container


def _gpu_resources(field: str, value: str) -> Callable[[Objects], None]:
    def edit(objs: Objects) -> None:
        resources = _gpu_pod(objs)["containers"][0]["resources"]
        resources["requests"][field] = resources["limits"][field] = value

    return edit


def _rename(holder: Spec, old: str, new: str) -> None:
    holder[new] = holder.pop(old)


def _redis_port(objs: Objects) -> None:
    data = find(objs, "ConfigMap", "redis-config")["data"]
    data["redis.conf"] = data["redis.conf"].replace("port 6379", "port 6380")


def _drop(objs: Objects, kind: str, name: str) -> None:
    objs.remove(find(objs, kind, name))


RUNTIME_CLASS = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "handler": "runsc"}

MUTATIONS: list[tuple[str, str, Callable[[Objects], None]]] = [
    # Both ends of every flow: the peer's side no longer admits what the runners need.
    ("redis admits the head only", "gpu",
     lambda o: _np(o, "redis")["ingress"][0].update({"from": [_component("ray-head")]})),
    ("the collector takes spans from the head only", "gpu",
     lambda o: _np(o, "jaeger")["ingress"][0].update({"from": [_component("ray-head")]})),
    ("the model admits only the head", "gpu",
     lambda o: _np(o, "llm")["ingress"][0].update({"from": [_component("ray-head")]})),
    ("the head no longer admits runners to GCS", "cpu",
     lambda o: _np(o, "ray-head")["ingress"][0]["ports"].pop(0)),
    ("runners' egress loses Redis", "cpu",
     lambda o: _np(o, "sandbox-runners")["egress"].pop(1)),
    # The control plane opened to the runners, or the head's egress left open.
    ("runners may reach the job server", "gpu",
     lambda o: _np(o, "sandbox-runners")["egress"][4]["ports"].append({"port": 8265})),
    ("runners may reach the head's job agent", "cpu",
     lambda o: _np(o, "sandbox-runners")["egress"][4]["ports"].append({"port": 52365})),
    ("the head admits runners on the job server", "gpu",
     lambda o: _np(o, "ray-head")["ingress"][0]["ports"].append({"port": 8265})),
    ("runners' DNS goes to any namespace", "cpu",
     lambda o: _np(o, "sandbox-runners")["egress"][0].update({"to": [{"namespaceSelector": {}}]})),
    ("the head has no egress policy", "gpu",
     lambda o: _np(o, "ray-head").update({"policyTypes": ["Ingress"], "egress": []})),
    ("the runners' network policy is gone", "cpu",
     lambda o: _drop(o, "NetworkPolicy", "sandbox-runners")),
    # Jaeger.
    ("the exporter writes to a missing storage", "gpu",
     lambda o: _jaeger(o, lambda c: c["exporters"]["jaeger_storage_exporter"].update(
         {"trace_storage": "traces_in_mem"}))),
    ("the query reads a missing storage", "cpu",
     lambda o: _jaeger(o, lambda c: c["extensions"]["jaeger_query"]["storage"].update(
         {"traces": "trace_store"}))),
    ("a misspelled Jaeger setting", "gpu",
     lambda o: _jaeger(o, lambda c: c["extensions"]["jaeger_storage"]["backends"][
         "traces_badger"]["badger"].update({"ttl": {"span": "1h"}}))),
    ("Jaeger keeps traces in memory again", "cpu",
     lambda o: _jaeger(o, lambda c: c["extensions"]["jaeger_storage"]["backends"][
         "traces_badger"].update({"badger": {"ephemeral": True}}))),
    # Services, ports and probes.
    ("the OTLP endpoint on a port the Service lacks", "cpu",
     lambda o: _settings(o).update(OTEL_EXPORTER_OTLP_ENDPOINT="http://jaeger-collector:4319")),
    ("a Service targetPort naming no container port", "gpu",
     lambda o: find(o, "Service", "jaeger-collector")["spec"]["ports"][1].update(
         {"targetPort": "otlp-htp"})),
    ("the model Service on a port nothing binds", "gpu",
     lambda o: find(o, "Service", "llm")["spec"]["ports"][0].update({"targetPort": 8001})),
    ("Redis listens elsewhere than its Service says", "gpu", _redis_port),
    ("the Serve proxy on another port", "gpu",
     lambda o: _serve(o, lambda c: c["http_options"].update({"port": 8001}))),
    ("a runner readiness probe on the wrong port", "cpu",
     lambda o: _runner(o)["readinessProbe"]["httpGet"].update({"port": 52366})),
    ("the dashboard's health path asked of the agent", "gpu",
     lambda o: _head(o)["readinessProbe"]["httpGet"].update({"port": 52365})),
    # Ray, Ray Serve LLM and vLLM.
    ("a misspelled rayStartParams key", "gpu",
     lambda o: _rename(_cluster(o)["workerGroupSpecs"][0]["rayStartParams"],
                       "node-manager-port", "node-manger-port")),
    ("an unknown LLMConfig field", "gpu",
     lambda o: _serve(o, lambda c: _llm(c).update({"acelerator_type": "A10G"}))),
    ("an unknown Serve config key (Ray ignores it)", "gpu",
     lambda o: _serve(o, lambda c: _rename(c, "proxy_location", "proxy_locaton"))),
    ("a misspelled vLLM engine argument", "gpu",
     lambda o: _serve(o, lambda c: _rename(_llm(c)["engine_kwargs"], "max_model_len",
                                           "max_model_length"))),
    ("a misspelled vllm serve flag", "cpu",
     lambda o: _vllm_cpu(o).update({"args": [a.replace("--max-model-len", "--max-modle-len")
                                             for a in _vllm_cpu(o)["args"]]})),
    ("tensor parallelism over 2 GPUs on a 1-GPU worker", "gpu",
     lambda o: _serve(o, lambda c: _llm(c)["engine_kwargs"].update({"tensor_parallel_size": 2}))),
    # Tracing of the model servers.
    ("vLLM's spans not sent (gpu)", "gpu",
     lambda o: _serve(o, lambda c: _llm(c)["engine_kwargs"].pop("otlp_traces_endpoint"))),
    ("vLLM's spans sent to a Service that does not exist", "gpu",
     lambda o: _serve(o, lambda c: _llm(c)["engine_kwargs"].update(
         {"otlp_traces_endpoint": "http://jaeger:4317"}))),
    ("vLLM's spans not sent (cpu)", "cpu",
     lambda o: _vllm_cpu(o).update({"args": [a for a in _vllm_cpu(o)["args"]
                                             if not a.startswith("--otlp")]})),
    # The GPU stack.
    ("a misspelled GPU toleration", "gpu",
     lambda o: _gpu_pod(o)["tolerations"][0].update({"key": "nvidia.com/gpus"})),
    ("GPU worker memory of 1 Gi", "gpu", _gpu_resources("memory", "1Gi")),
    ("GPU worker asks 8 CPUs of an 8 vCPU node", "gpu", _gpu_resources("cpu", "8")),
    ("the RayService head serves and is health-checked", "gpu",
     lambda o: _service(o).pop("excludeHeadPodFromServeSvc")),
    # Authentication, gVisor, the lab's settings, the sandbox pods.
    ("authOptions removed from the swarm's cluster", "gpu",
     lambda o: _cluster(o).pop("authOptions")),
    ("authOptions removed from the model's cluster", "gpu",
     lambda o: _service(o)["rayClusterConfig"].pop("authOptions")),
    ("runners not under gVisor", "cpu",
     lambda o: _cluster(o)["workerGroupSpecs"][0]["template"]["spec"].pop("runtimeClassName")),
    ("the RuntimeClass back in the overlay", "gpu",
     lambda o: o.append({**RUNTIME_CLASS, "metadata": {"name": "gvisor"}})),
    ("the lab asks for a model nobody serves", "cpu",
     lambda o: _settings(o).update(SWARMLAB_MODEL_NAME="swarmlab")),
    ("runner pods mount a service account token", "cpu",
     lambda o: _cluster(o)["workerGroupSpecs"][0]["template"]["spec"].update(
         {"automountServiceAccountToken": True})),
]  # fmt: skip


def test_there_are_at_least_twenty_breaking_edits() -> None:
    assert len(MUTATIONS) >= 20
    assert len({name for name, _, _ in MUTATIONS}) == len(MUTATIONS)


@pytest.mark.parametrize(
    ("overlay", "mutate"),
    [pytest.param(overlay, mutate, id=name) for name, overlay, mutate in MUTATIONS],
)
def test_a_breaking_edit_fails_a_check(
    rendered: Rendered, overlay: str, mutate: Callable[[Objects], None]
) -> None:
    objs = copy.deepcopy(rendered[overlay])
    before = yaml.safe_dump_all(objs)
    mutate(objs)
    assert yaml.safe_dump_all(objs) != before, "the edit changed nothing"
    assert all_checks(objs, overlay), "no check noticed"
