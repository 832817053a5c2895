"""The connections the deployment needs, and those it must refuse, checked on both ends.

A needed flow must be let out by the source's egress policies, let in by the destination's
ingress policies, and reach a port the destination's process binds. A refused flow must be
stopped by every end that this deployment governs (each policy alone closes it), so that one
loosened policy does not open the control plane.
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers.k8s_network import (
    Endpoint,
    Port,
    allowed,
    endpoints,
    env_of,
    expand,
    listening,
    resolve,
    role,
    serve_config,
)
from helpers.k8s_objects import NAMESPACE, Objects, find, find_all, pods

HEAD, RUNNER = "ray-head", "sandbox-runner"
# Ray ports a runner must reach on the head: GCS, raylet, object manager, worker processes.
RUNNER_TO_HEAD = (6379, 6380, 6381, 10002, 10199)
# The control plane: job server and dashboard, dashboard agents (the job agent), Ray client,
# metrics. Whoever reaches these with the cluster's token runs code on the head.
CONTROL_PLANE = (8265, 52365, 6383, 10001, 8080)


@dataclass(frozen=True)
class Flow:
    src: str
    dst: str
    port: int
    proto: str = "TCP"
    why: str = ""

    def label(self) -> str:
        return f"{self.src} -> {self.dst}:{self.port}/{self.proto} ({self.why})"


def needed_flows(objs: Objects) -> tuple[list[Flow], list[str]]:
    """Every connection the deployment needs, and problems found while working them out."""
    flows: list[Flow] = []
    problems: list[str] = []
    swarm = [HEAD, RUNNER]
    for src in swarm:
        flows += [Flow(src, "kube-dns", 53, p, "DNS") for p in ("UDP", "TCP")]
    settings = _settings(objs)
    for key in ("SWARMLAB_REDIS_URL_HOST", "SWARMLAB_MODEL_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = settings.get(key)
        if not url:
            problems.append(f"swarmlab-settings: no {key}")
            continue
        backends, found = resolve(objs, url)
        problems += found
        flows += [Flow(s, role(b.pod), b.port, "TCP", key) for s in swarm for b in backends]
    flows += [Flow(RUNNER, HEAD, p, why="Ray: runner to head") for p in RUNNER_TO_HEAD]
    flows += [Flow(RUNNER, RUNNER, p, why="Ray: peers") for p in (6380, 6381, 10002, 10199)]
    head_to_runner = (6380, 6381, 6383, 52365, 10002, 10199)
    flows += [Flow(HEAD, RUNNER, p, why="Ray: head to runner") for p in head_to_runner]
    flows += [Flow(HEAD, HEAD, p, why="Ray: on the head") for p in (6379, 8265)]
    more, found = _model_server_flows(objs)
    return flows + more, problems + found


def _model_server_flows(objs: Objects) -> tuple[list[Flow], list[str]]:
    flows, problems = [], []
    for source, url in model_server_trace_endpoints(objs):
        if not url:
            problems.append(f"{source}: vLLM sends no spans (no OTLP traces endpoint)")
            continue
        backends, found = resolve(objs, url)
        problems += found
        flows += [Flow(source, role(b.pod), b.port, why="vLLM spans") for b in backends]
    for service in find_all(objs, "RayService"):
        flows.append(Flow("kuberay-operator", "llm-head", 8265, why="Serve config and status"))
        flows.append(Flow("llm-worker", "llm-head", 6379, why="Ray: worker joins"))
        if not service["spec"].get("excludeHeadPodFromServeSvc"):
            port = int(((serve_config(service) or {}).get("http_options") or {}).get("port", 8000))
            flows.append(Flow("kuberay-operator", "llm-head", port, why="proxy health check"))
    return flows, problems


def refused_flows(objs: Objects) -> list[Flow]:
    flows = [Flow(RUNNER, HEAD, p, why="control plane") for p in CONTROL_PLANE]
    for src in (RUNNER, HEAD):
        flows += [
            Flow(src, "internet", 443, why="egress to the internet"),
            Flow(src, "internet", 80, why="egress to the internet"),
            Flow(src, "kube-apiserver", 443, why="the Kubernetes API"),
            Flow(src, "public-dns", 53, "UDP", "DNS around kube-dns"),
        ]
    flows += [
        Flow(RUNNER, "jaeger", 16686, why="every run's traces and code"),
        Flow("other-namespace-pod", HEAD, 8265, why="job server from elsewhere"),
        Flow("other-namespace-pod", "redis", 6379, why="caps and run state"),
        Flow("other-namespace-pod", RUNNER, 10002, why="into the sandbox"),
    ]
    if find_all(objs, "RayService"):
        flows.append(Flow(RUNNER, "llm-head", 8265, why="the model's control plane"))
    return flows


def check_flows(objs: Objects) -> list[str]:
    ends = endpoints(objs)
    needed, bad = needed_flows(objs)
    for flow in needed:
        bad += _needed_problems(objs, ends, flow)
    for flow in refused_flows(objs):
        src, dst = ends.get(flow.src), ends.get(flow.dst)
        if src is None or dst is None:
            continue
        out, into = allowed(objs, src, dst, (flow.proto, flow.port))
        if src.namespace == NAMESPACE and out:
            bad.append(f"egress of {flow.label()} is open: it must be refused")
        if dst.namespace == NAMESPACE and into:
            bad.append(f"ingress of {flow.label()} is open: it must be refused")
    return bad


def _needed_problems(objs: Objects, ends: dict[str, Endpoint], flow: Flow) -> list[str]:
    src, dst = ends.get(flow.src), ends.get(flow.dst)
    if src is None or dst is None:
        return [f"{flow.label()}: no {flow.src if src is None else flow.dst} in the overlay"]
    port: Port = (flow.proto, flow.port)
    bad = []
    if dst.pod is not None and port not in listening(objs, dst.pod):
        bad.append(f"{flow.label()}: {dst.pod.where} listens on no such port")
    out, into = allowed(objs, src, dst, port)
    if not out:
        bad.append(f"{flow.label()}: the source's egress policy drops it")
    if not into:
        bad.append(f"{flow.label()}: the destination's ingress policy drops it")
    return bad


def model_server_trace_endpoints(objs: Objects) -> list[tuple[str, str]]:
    """(source role, OTLP URL) where each model server sends vLLM's spans."""
    found = []
    for service in find_all(objs, "RayService"):
        config = serve_config(service) or {}
        for app in config.get("applications") or []:
            for llm in (app.get("args") or {}).get("llm_configs") or []:
                url = (llm.get("engine_kwargs") or {}).get("otlp_traces_endpoint")
                found.append(("llm-worker", str(url or "")))
    for pod in pods(objs):
        for c in pod.spec.get("containers", []):
            if c.get("command") == ["vllm", "serve"]:
                args = expand(objs, pod, c, c.get("args", []))
                urls = [a.split("=", 1)[1] for a in args if a.startswith("--otlp-traces-endpoint=")]
                found.append((role(pod), urls[-1] if urls else ""))
    return found


def _settings(objs: Objects) -> dict[str, str]:
    """The swarm's settings as its pods see them; the Redis URL reduced to where it points."""
    cluster = find(objs, "RayCluster", "swarmlab")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = env_of(objs, head)
    redis = env.get("SWARMLAB_REDIS_URL", "")
    if redis:
        host_port = redis.split("@", 1)[-1].split("/", 1)[0]
        env["SWARMLAB_REDIS_URL_HOST"] = f"redis://{host_port}"
    return env
