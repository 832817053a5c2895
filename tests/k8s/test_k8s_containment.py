"""Containment of the sandbox runners, checked on every overlay and on objects broken on purpose."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from helpers.k8s_objects import OVERLAYS, find
from helpers.k8s_policy import check_limits, check_sandbox_network, check_sandbox_pods

Rendered = dict[str, list[dict[str, Any]]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_cpu_and_memory_limits(rendered: Rendered, overlay: str) -> None:
    assert check_limits(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sandbox_runner_pods_are_locked_down(rendered: Rendered, overlay: str) -> None:
    assert check_sandbox_pods(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sandbox_runners_reach_only_redis_model_traces_ray_and_dns(
    rendered: Rendered, overlay: str
) -> None:
    assert check_sandbox_network(rendered[overlay]) == []


def _runner_pod(objs: list[dict[str, Any]]) -> dict[str, Any]:
    cluster = find(objs, "RayCluster", "swarmlab")
    group = next(
        g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "sandbox-runners"
    )
    spec: dict[str, Any] = group["template"]["spec"]
    return spec


def test_the_checks_catch_a_pod_without_limits(rendered: Rendered) -> None:
    objs = copy.deepcopy(rendered["cpu"])
    jaeger = find(objs, "Deployment", "jaeger")["spec"]["template"]["spec"]["containers"][0]
    del jaeger["resources"]["limits"]
    assert any("Deployment/jaeger" in v and "limits" in v for v in check_limits(objs))


@pytest.mark.parametrize(
    ("breakage", "complaint"),
    [
        (lambda pod, c: c["resources"]["requests"].update(cpu="1"), "requests"),
        (lambda pod, c: c["securityContext"].update(readOnlyRootFilesystem=False), "writable"),
        (lambda pod, c: c["securityContext"].update(allowPrivilegeEscalation=True), "Escalation"),
        (lambda pod, c: c["securityContext"]["capabilities"].update(add=["NET_RAW"]), "added"),
        (lambda pod, c: c["securityContext"].update(runAsUser=0), "runAsUser"),
        (lambda pod, c: c["securityContext"].update(seccompProfile={"type": "Unconfined"}), "secc"),
        (lambda pod, c: pod.update(automountServiceAccountToken=True), "automount"),
        (lambda pod, c: pod.update(hostNetwork=True), "hostNetwork"),
        (lambda pod, c: c.update(volumeMounts=[]), "emptyDir at /tmp"),
    ],
)
def test_the_checks_catch_a_loosened_sandbox_pod(
    rendered: Rendered, breakage: Any, complaint: str
) -> None:
    objs = copy.deepcopy(rendered["gpu"])
    pod = _runner_pod(objs)
    breakage(pod, pod["containers"][0])
    problems = check_sandbox_pods(objs)
    assert any(complaint in p and "sandbox-runners" in p for p in problems), problems


@pytest.mark.parametrize(
    ("extra_egress", "complaint"),
    [
        ({}, "open to anyone"),  # `egress: [{}]` lets everything out
        ({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}, "open to any port"),
        ({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}, "not allowed"),
        ({"to": [{"namespaceSelector": {}}], "ports": [{"port": 6379}]}, "not allowed"),
        (
            {
                "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "redis"}}}],
                "ports": [{"port": 6379, "endPort": 6390}],
            },
            "not allowed",
        ),
    ],
)
def test_the_checks_catch_open_sandbox_egress(
    rendered: Rendered, extra_egress: dict[str, Any], complaint: str
) -> None:
    objs = copy.deepcopy(rendered["gpu"])
    find(objs, "NetworkPolicy", "sandbox-runners")["spec"]["egress"].append(extra_egress)
    problems = check_sandbox_network(objs)
    assert any(complaint in p for p in problems), problems


def test_the_checks_catch_a_second_policy_that_opens_egress(rendered: Rendered) -> None:
    objs = copy.deepcopy(rendered["cpu"])
    objs.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all-out"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
        }
    )
    assert any("allow-all-out" in p for p in check_sandbox_network(objs))


def test_the_checks_catch_runners_without_a_network_policy(rendered: Rendered) -> None:
    objs = [o for o in rendered["cpu"] if o["metadata"]["name"] != "sandbox-runners"]
    problems = check_sandbox_network(objs)
    assert "no NetworkPolicy isolates sandbox-runner egress" in problems
    assert "no NetworkPolicy isolates sandbox-runner ingress" in problems


def test_the_checks_catch_ingress_from_outside_ray(rendered: Rendered) -> None:
    objs = copy.deepcopy(rendered["cpu"])
    find(objs, "NetworkPolicy", "sandbox-runners")["spec"]["ingress"].append(
        {"from": [{"namespaceSelector": {}}], "ports": [{"port": 52365}]}
    )
    assert any("ingress from" in p for p in check_sandbox_network(objs))
