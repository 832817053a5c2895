"""A run's bound on requests in flight at the model server is the Serve app's capacity: the
cluster's settings say the same as the Serve config, and a run driven there takes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from swarmlab.runtime._model_gate import DEFAULT_IN_FLIGHT, in_flight_bound

K8S = Path(__file__).resolve().parents[2] / "k8s"


def _settings() -> dict[str, str]:
    lines = (K8S / "base" / "settings.env").read_text().split("\n")
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_the_clusters_bound_is_the_serve_configs_capacity() -> None:
    serve = yaml.safe_load((K8S / "overlays" / "gpu" / "serve-config.yaml").read_text())
    capacity = 0
    for app in serve["applications"]:
        for llm in app["args"]["llm_configs"]:
            deployment = llm["deployment_config"]
            replicas = deployment["autoscaling_config"]["max_replicas"]
            capacity += deployment["max_ongoing_requests"] * replicas
    assert int(_settings()["SWARMLAB_MODEL_IN_FLIGHT"]) == capacity


def test_the_bound_comes_from_the_spec_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SWARMLAB_MODEL_IN_FLIGHT", raising=False)
    assert in_flight_bound(None) == DEFAULT_IN_FLIGHT
    monkeypatch.setenv("SWARMLAB_MODEL_IN_FLIGHT", _settings()["SWARMLAB_MODEL_IN_FLIGHT"])
    assert in_flight_bound(None) == 64
    assert in_flight_bound(5) == 5  # the spec's own wins
