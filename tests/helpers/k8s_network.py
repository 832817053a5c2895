"""NetworkPolicy, evaluated the way a network plugin enforces it, on rendered objects.

`allowed(objs, src, dst, port)` says whether the source's egress policies let a connection out
and whether the destination's ingress policies let it in (Kubernetes' rules: a pod selected by a
policy of a direction is isolated in that direction, and then only what some rule admits
passes). `listening(objs, pod)` is what a pod's processes bind, read from their own settings
(rayStartParams, `vllm serve --port`, redis.conf, Jaeger's config), not from the declared
containerPorts. `resolve(objs, url)` follows a URL through its Service to the pods and ports
behind it. The flows the deployment needs, and those it must refuse, are in k8s_flows.py.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from helpers.k8s_objects import NAMESPACE, Objects, Pod, find_all, pods

COMPONENT = "app.kubernetes.io/component"
Port = tuple[str, int]  # (protocol, number)


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod of the deployment, or something around it."""

    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]
    ip: str
    pod: Pod | None = field(default=None, compare=False, hash=False)

    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


# Peers outside the deployment that policies must tell apart.
OUTSIDE = {
    "kube-dns": Endpoint("kube-dns", "kube-system", (("k8s-app", "kube-dns"),), "10.244.9.10"),
    "kuberay-operator": Endpoint(
        "kuberay-operator",
        "kuberay-system",
        (("app.kubernetes.io/name", "kuberay-operator"),),
        "10.244.9.20",
    ),
    "other-namespace-pod": Endpoint(
        "other-namespace-pod", "default", (("app", "x"),), "10.244.9.30"
    ),
    "internet": Endpoint("internet", "", (), "93.184.216.34"),
    "public-dns": Endpoint("public-dns", "", (), "8.8.8.8"),
    "kube-apiserver": Endpoint("kube-apiserver", "", (), "172.20.0.1"),
}


def role(pod: Pod) -> str:
    """A pod's name in flows: its component, and for Ray-served models head or worker."""
    component = pod.labels.get(COMPONENT, pod.where)
    if pod.owner["kind"] == "RayService":
        return f"{component}-{pod.labels['ray.io/node-type']}"
    return component


def endpoints(objs: Objects) -> dict[str, Endpoint]:
    found = dict(OUTSIDE)
    for i, pod in enumerate(pods(objs)):
        labels = tuple(sorted(pod.labels.items()))
        found[role(pod)] = Endpoint(role(pod), NAMESPACE, labels, f"10.244.1.{i + 1}", pod)
    return found


def namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace} if namespace else {}


# --- selectors and peers --------------------------------------------------------------------


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
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


def _peer_matches(peer: dict[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        ip = ipaddress.ip_address(other.ip)
        if ip not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(ip in ipaddress.ip_network(e) for e in block.get("except") or [])
    if not other.namespace:  # outside the cluster: only ipBlock peers match
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace_labels(other.namespace)):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], other.label_map())


def _port_matches(rule: dict[str, Any], proto: str, port: int, target: Endpoint) -> bool:
    specs = rule.get("ports")
    if not specs:
        return True
    for spec in specs:
        if spec.get("protocol", "TCP") != proto:
            continue
        wanted = spec.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            wanted = named_port(target.pod, wanted) if target.pod else None
            if wanted is None:
                continue
        if int(wanted) <= port <= int(spec.get("endPort", wanted)):
            return True
    return False


def policy_types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    declared = spec.get("policyTypes")
    if declared:
        return list(declared)
    return ["Ingress"] + (["Egress"] if "egress" in spec else [])


def _side_allows(
    objs: Objects, me: Endpoint, other: Endpoint, direction: str, port: Port, target: Endpoint
) -> bool:
    if me.namespace != NAMESPACE:
        return True  # not governed by this deployment's policies
    selecting = [
        p
        for p in find_all(objs, "NetworkPolicy")
        if p["metadata"].get("namespace", NAMESPACE) == me.namespace
        and selects(p["spec"].get("podSelector"), me.label_map())
        and direction in policy_types(p)
    ]
    if not selecting:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for policy in selecting:
        namespace = policy["metadata"].get("namespace", NAMESPACE)
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, namespace, other) for p in peers)
            if peer_ok and _port_matches(rule, port[0], port[1], target):
                return True
    return False


def allowed(objs: Objects, src: Endpoint, dst: Endpoint, port: Port) -> tuple[bool, bool]:
    """(the source's egress lets it out, the destination's ingress lets it in)."""
    out = _side_allows(objs, src, dst, "Egress", port, dst)
    into = _side_allows(objs, dst, src, "Ingress", port, dst)
    return out, into


# --- what pods listen on ----------------------------------------------------------------------


def declared_ports(pod: Pod) -> list[dict[str, Any]]:
    return [p for c in pod.spec.get("containers", []) for p in c.get("ports", [])]


def named_port(pod: Pod | None, name: str) -> int | None:
    for port in declared_ports(pod) if pod else []:
        if port.get("name") == name:
            return int(port["containerPort"])
    return None


RAY_HEAD_DEFAULTS = {"port": 6379, "dashboard-port": 8265, "ray-client-server-port": 10001}
RAY_NODE_KEYS = (
    "node-manager-port",
    "object-manager-port",
    "runtime-env-agent-port",
    "dashboard-agent-grpc-port",
    "metrics-export-port",
)


def ray_ports(pod: Pod) -> set[int]:
    """What Ray binds on a node, from its `ray start` parameters (fixed ports only)."""
    params = pod.ray_params or {}
    ports = {int(params.get("dashboard-agent-listen-port", 52365))}
    ports |= {int(params[k]) for k in RAY_NODE_KEYS if k in params}
    if pod.is_ray_head:
        ports |= {int(params.get(k, default)) for k, default in RAY_HEAD_DEFAULTS.items()}
    if "min-worker-port" in params and "max-worker-port" in params:
        ports |= set(range(int(params["min-worker-port"]), int(params["max-worker-port"]) + 1))
    return ports


def listening(objs: Objects, pod: Pod) -> set[Port]:
    if pod.ray_params is not None:
        found = {("TCP", p) for p in ray_ports(pod)}
        serve = serve_config(pod.owner) if pod.owner["kind"] == "RayService" else None
        if serve is not None:
            on_every_node = serve.get("proxy_location", "EveryNode") == "EveryNode"
            if pod.is_ray_head or on_every_node:
                found.add(("TCP", int((serve.get("http_options") or {}).get("port", 8000))))
        return found
    found = set()
    for c in pod.spec.get("containers", []):
        found |= _program_ports(objs, pod, c)
    return found


def _program_ports(objs: Objects, pod: Pod, c: dict[str, Any]) -> set[Port]:
    image = str(c.get("image", ""))
    if c.get("command") == ["vllm", "serve"]:
        args = expand(objs, pod, c, c.get("args", []))
        given = [a.split("=", 1)[1] for a in args if a.startswith("--port=")]
        return {("TCP", int(given[-1] if given else 8000))}
    if image.startswith("redis:"):
        conf = _configmap_file(objs, pod, "/etc/redis", "redis.conf")
        ports = re.findall(r"^port\s+(\d+)", conf or "", re.M)
        return {("TCP", int(ports[-1]) if ports else 6379)}
    if image.startswith("jaegertracing/jaeger:"):
        config = yaml.safe_load(_configmap_file(objs, pod, "/etc/jaeger", "config.yaml") or "{}")
        return {("TCP", port) for port in _endpoint_ports(config)}
    return {(p.get("protocol", "TCP"), int(p["containerPort"])) for p in c.get("ports", [])}


def _endpoint_ports(node: Any) -> set[int]:
    found: set[int] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "endpoint" and isinstance(value, str) and ":" in value:
                found.add(int(value.rsplit(":", 1)[1]))
            else:
                found |= _endpoint_ports(value)
    elif isinstance(node, list):
        for value in node:
            found |= _endpoint_ports(value)
    return found


def _configmap_file(objs: Objects, pod: Pod, mount_dir: str, filename: str) -> str | None:
    volumes = {v["name"]: v for v in pod.spec.get("volumes", [])}
    for c in pod.spec.get("containers", []):
        for mount in c.get("volumeMounts", []):
            source = volumes.get(mount["name"], {}).get("configMap")
            if mount["mountPath"] == mount_dir and source:
                for cm in find_all(objs, "ConfigMap"):
                    if cm["metadata"]["name"] == source["name"]:
                        return (cm.get("data") or {}).get(filename)
    return None


def env_of(objs: Objects, c: dict[str, Any]) -> dict[str, str]:
    """A container's environment as Kubernetes builds it: ConfigMaps first, then `env`."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        name = (source.get("configMapRef") or {}).get("name")
        for cm in find_all(objs, "ConfigMap"):
            if cm["metadata"]["name"] == name:
                env.update(cm.get("data") or {})
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
    return env


def expand(objs: Objects, pod: Pod, c: dict[str, Any], args: list[str]) -> list[str]:
    """`$(VAR)` in a container's args, replaced as the kubelet does."""
    env = env_of(objs, c)
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), str(a)) for a in args]


def serve_config(service: dict[str, Any]) -> dict[str, Any] | None:
    try:
        config = yaml.safe_load(service["spec"].get("serveConfigV2") or "")
    except yaml.YAMLError:
        return None
    return config if isinstance(config, dict) else None


# --- from a URL to the pods behind it -----------------------------------------------------------


@dataclass
class Backend:
    pod: Pod
    port: int


def resolve(objs: Objects, url: str) -> tuple[list[Backend], list[str]]:
    """The pods and ports a URL reaches through its Service, and what breaks on the way."""
    parts = urlsplit(url)
    host = (parts.hostname or "").split(".")[0]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    services = [s for s in find_all(objs, "Service") if s["metadata"]["name"] == host]
    if not services:
        return [], [f"{url}: no Service {host!r}"]
    spec = services[0]["spec"]
    ports = [p for p in spec.get("ports", []) if int(p["port"]) == port]
    if not ports:
        return [], [f"{url}: Service {host} has no port {port}"]
    target = ports[0].get("targetPort", port)
    selected = [p for p in pods(objs) if selects({"matchLabels": spec.get("selector")}, p.labels)]
    if not selected:
        return [], [f"{url}: Service {host} selects no pod"]
    backends, problems = [], []
    for pod in selected:
        number = named_port(pod, target) if isinstance(target, str) else int(target)
        if number is None:
            problems.append(f"Service {host}: targetPort {target!r} names no port of {pod.where}")
        elif ("TCP", number) not in listening(objs, pod):
            problems.append(f"Service {host}: {pod.where} listens on no port {number}")
        else:
            backends.append(Backend(pod, number))
    return backends, problems
