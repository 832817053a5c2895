"""Runner actors spread over the sandbox pods instead of piling onto one.

A real multi-node Ray cluster on this machine (a head with no CPUs and two nodes advertising the
runner resource, as the `sandbox-runners` pods do) places actors with exactly the options the
runner pool uses. Runners ask for no CPU, so without a spreading strategy Ray packs every one of
them onto the first node that has the resource and leaves the other pod idle.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

PLACE = r"""
import json, sys
import ray
from ray.cluster_utils import Cluster
from swarmlab.runtime._pool import runner_actor_options

temp, resource, runners = sys.argv[1], sys.argv[2], int(sys.argv[3])
cluster = Cluster(
    initialize_head=True,
    head_node_args={"num_cpus": 0, "temp_dir": temp + "/ray", "include_dashboard": False},
)
try:
    pods = [cluster.add_node(num_cpus=1, resources={resource: 1000}) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)

    @ray.remote
    class Probe:
        def node(self):
            return ray.get_runtime_context().get_node_id()

    options = runner_actor_options()
    options.pop("max_concurrency")  # a plain actor: the placement options are what matter
    actors = [Probe.options(**options).remote() for _ in range(runners)]
    placed = ray.get([a.node.remote() for a in actors], timeout=90)
    print(json.dumps({"pods": [p.node_id for p in pods], "placed": placed}))
finally:
    ray.shutdown()
    cluster.shutdown()
"""


def _place(runners: int) -> dict[str, list[str]]:
    temp = tempfile.mkdtemp(prefix="swlp-", dir="/tmp")  # Ray's socket paths must be short
    # Ray writes the cluster's address under RAY_TMPDIR/ray: here, never in the shared /tmp/ray.
    os.makedirs(os.path.join(temp, "ray"))
    env = {
        **os.environ,
        "SWARMLAB_RUNNER_RESOURCE": "sandbox_runner",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_TMPDIR": temp,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", PLACE, temp, "sandbox_runner", str(runners)],
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            start_new_session=True,
        )
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_runners_spread_over_the_sandbox_pods() -> None:
    result = _place(runners=4)
    pods, placed = set(result["pods"]), result["placed"]
    assert set(placed) <= pods, "a runner landed outside the sandbox pods (on the head)"
    assert set(placed) == pods, f"runners piled onto {len(set(placed))} of {len(pods)} pods"
    counts = sorted(placed.count(pod) for pod in pods)
    assert counts == [2, 2], counts


def test_the_pool_asks_for_the_sandbox_resource_only_on_a_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from swarmlab.runtime._pool import runner_actor_options

    monkeypatch.delenv("SWARMLAB_RUNNER_RESOURCE", raising=False)
    assert "resources" not in runner_actor_options()  # a laptop: runners go anywhere
    monkeypatch.setenv("SWARMLAB_RUNNER_RESOURCE", "sandbox_runner")
    assert runner_actor_options()["resources"] == {"sandbox_runner": 1}
