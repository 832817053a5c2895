"""The containment rules, as checks on rendered objects. Each check returns its violations.

An empty list means the rule holds. The tests run the checks on every overlay, and on objects
broken on purpose, to see that a violation is caught.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from helpers.k8s_objects import containers, pod_templates

COMPONENT = "app.kubernetes.io/component"
SANDBOX = "sandbox-runner"
DNS_PORTS = {("UDP", 53), ("TCP", 53)}
# What sandbox runners may reach besides Ray and DNS, by component, and on which ports.
SERVICE_PORTS = {"redis": {6379}, "llm": {8000}, "jaeger": {4317, 4318}}
REQUIRED_EGRESS = ("dns", "redis", "llm", "jaeger", "ray-head")

Objects = list[dict[str, Any]]


# --- resources ------------------------------------------------------------------------------


def check_limits(objs: Objects) -> list[str]:
    """Every container of every pod has CPU and memory requests and limits."""
    bad = []
    for where, pod, _ in _pods(objs):
        for c in containers(pod):
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(res.get(kind) or {})
                if missing:
                    bad.append(f"{where} {c['name']}: no {kind} for {', '.join(sorted(missing))}")
    return bad


# --- sandbox-runner pods --------------------------------------------------------------------


def check_sandbox_pods(objs: Objects) -> list[str]:
    """Sandbox-runner pods: non-root, read-only root, no capabilities, no privilege escalation,
    RuntimeDefault seccomp, no service account token, requests = limits, emptyDir for /tmp and
    Ray's temp dir, nothing from the host."""
    pods = [(w, p) for w, p, labels in _pods(objs) if labels.get(COMPONENT) == SANDBOX]
    if not pods:
        return ["no sandbox-runner pods"]
    bad = []
    for where, pod in pods:
        pod_sc = pod.get("securityContext") or {}
        if pod.get("automountServiceAccountToken") is not False:
            bad.append(f"{where}: automountServiceAccountToken is not false")
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(flag):
                bad.append(f"{where}: {flag}")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        bad += [f"{where}: hostPath volume {n}" for n, v in volumes.items() if "hostPath" in v]
        for c in containers(pod):
            bad += [f"{where} {c['name']}: {p}" for p in _container_problems(c, pod_sc, volumes)]
    return bad


def _container_problems(
    c: dict[str, Any], pod_sc: dict[str, Any], volumes: dict[str, dict[str, Any]]
) -> Iterable[str]:
    sc = c.get("securityContext") or {}

    def setting(key: str) -> Any:
        return sc[key] if key in sc else pod_sc.get(key)

    if setting("runAsNonRoot") is not True:
        yield "runAsNonRoot is not true"
    if not setting("runAsUser"):
        yield "no runAsUser (or uid 0)"
    if sc.get("readOnlyRootFilesystem") is not True:
        yield "root filesystem is writable"
    if sc.get("allowPrivilegeEscalation") is not False:
        yield "allowPrivilegeEscalation is not false"
    if sc.get("privileged"):
        yield "privileged"
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        yield "capabilities not all dropped"
    if caps.get("add"):
        yield f"capabilities added: {caps['add']}"
    if (setting("seccompProfile") or {}).get("type") != "RuntimeDefault":
        yield "seccomp profile is not RuntimeDefault"
    res = c.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    if not limits or requests != limits:
        yield f"requests {requests} != limits {limits}"
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    for path in ("/tmp", "/tmp/ray"):
        if "emptyDir" not in volumes.get(mounts.get(path, ""), {}):
            yield f"no emptyDir at {path}"


# --- sandbox-runner network -----------------------------------------------------------------


def ray_ports(objs: Objects) -> dict[str, set[int]]:
    """The swarm's Ray ports from its RayCluster's start params, by who may use them:
    `head_data` (GCS, raylet, object manager and workers of the head), `node_data` (raylet, object
    manager and workers of a runner), `agents` (a runner's dashboard agent, asked by the head)."""
    cluster = next(o for o in objs if o["kind"] == "RayCluster")
    head_params = cluster["spec"]["headGroupSpec"].get("rayStartParams", {})
    worker = next(
        g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "sandbox-runners"
    )
    worker_params = worker.get("rayStartParams", {})

    def data(params: dict[str, str]) -> set[int]:
        keys = ("node-manager-port", "object-manager-port")
        ports = {int(params[k]) for k in keys if k in params}
        if "min-worker-port" in params:
            ports |= set(range(int(params["min-worker-port"]), int(params["max-worker-port"]) + 1))
        return ports

    agents = {int(worker_params.get("dashboard-agent-listen-port", 52365))}
    if "dashboard-agent-grpc-port" in worker_params:
        agents.add(int(worker_params["dashboard-agent-grpc-port"]))
    return {
        "head_data": data(head_params) | {int(head_params.get("port", 6379))},
        "node_data": data(worker_params),
        "agents": agents,
    }


def check_sandbox_network(objs: Objects) -> list[str]:
    """Sandbox runners: ingress only from Ray peers on Ray's data ports (the head also on the
    agents'); egress only to DNS, Redis, the model, the trace collector and Ray's data ports,
    never the control plane (job server, dashboard, agents, client). NetworkPolicies add up, so
    every policy that selects the pods is checked, and at least one must isolate each direction."""
    labels = next(
        (lb for _, _, lb in _pods(objs) if lb.get(COMPONENT) == SANDBOX), {COMPONENT: SANDBOX}
    )
    policies = [p for p in objs if p["kind"] == "NetworkPolicy" and _selects(p, labels)]
    ray = ray_ports(objs)
    allowed = {
        **{name: {("TCP", p) for p in ports} for name, ports in SERVICE_PORTS.items()},
        "ray-head": {("TCP", p) for p in ray["head_data"]},
        SANDBOX: {("TCP", p) for p in ray["node_data"]},
    }
    ray_in = {
        "ray-head": {("TCP", p) for p in ray["node_data"] | ray["agents"]},
        SANDBOX: {("TCP", p) for p in ray["node_data"]},
    }
    bad = []
    for direction in ("Ingress", "Egress"):
        if not any(direction in p["spec"].get("policyTypes", []) for p in policies):
            bad.append(f"no NetworkPolicy isolates sandbox-runner {direction.lower()}")
    reached = set()
    for policy in policies:
        name = policy["metadata"]["name"]
        for rule in policy["spec"].get("egress", []):
            peers, ports = rule.get("to") or [], _ports(rule, bad, name)
            if not peers or ports is None:
                bad.append(f"{name}: an egress rule open to {'any port' if peers else 'anyone'}")
                continue
            for peer in peers:
                target = _peer(peer)
                permitted = DNS_PORTS if target == "dns" else allowed.get(target or "", set())
                if target is None or not ports <= permitted:
                    bad.append(f"{name}: egress to {peer} on {sorted(ports)} is not allowed")
                if target is not None and ports & permitted:
                    reached.add(target)
        for rule in policy["spec"].get("ingress", []):
            peers, ports = rule.get("from") or [], _ports(rule, bad, name)
            if not peers or ports is None:
                bad.append(f"{name}: an ingress rule open to {'any port' if peers else 'anyone'}")
                continue
            for peer in peers:
                if not ports <= ray_in.get(_peer(peer) or "", set()):
                    bad.append(f"{name}: ingress from {peer} on {sorted(ports)} is not allowed")
    missing = [t for t in REQUIRED_EGRESS if t not in reached]
    if policies and missing:
        bad.append(f"sandbox runners cannot reach {', '.join(missing)}: the swarm would not run")
    return bad


def _pods(objs: Objects) -> Iterable[tuple[str, dict[str, Any], dict[str, str]]]:
    for obj in objs:
        yield from pod_templates(obj)


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"].get("podSelector") or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def _ports(rule: dict[str, Any], bad: list[str], name: str) -> set[tuple[str, int]] | None:
    """The (protocol, port) pairs a rule opens; None when it opens every port."""
    specs = rule.get("ports")
    if not specs:
        return None
    opened = set()
    for spec in specs:
        proto, port = spec.get("protocol", "TCP"), spec.get("port")
        if not isinstance(port, int):
            bad.append(f"{name}: port {port!r} cannot be checked (use numbers)")
            continue
        opened |= {(proto, p) for p in range(port, int(spec.get("endPort", port)) + 1)}
    return opened


def _peer(peer: dict[str, Any]) -> str | None:
    """Which allowed destination a peer is: 'dns', a component of this namespace, or None."""
    if "ipBlock" in peer:
        return None
    pods = (peer.get("podSelector") or {}).get("matchLabels") or {}
    namespaces = peer.get("namespaceSelector")
    if namespaces is not None:
        is_kube_system = (namespaces.get("matchLabels") or {}) == {
            "kubernetes.io/metadata.name": "kube-system"
        }
        return "dns" if is_kube_system and pods == {"k8s-app": "kube-dns"} else None
    if set(pods) != {COMPONENT} or (peer.get("podSelector") or {}).get("matchExpressions"):
        return None
    return str(pods[COMPONENT])
