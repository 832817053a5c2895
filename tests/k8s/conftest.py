"""Fixtures for the deployment tests: every overlay, rendered once per session; a real local
Ray head with its job server, started once per session for the tests that submit to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers.fake_endpoint import FakeEndpoint, serving
from helpers.k8s_objects import OVERLAYS, REPO, render
from helpers.ray_head import CLUSTER_MODEL_ANSWER, CLUSTER_MODEL_NAME, RayHead, started_ray_head


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay's objects, as `kubectl apply -k k8s/overlays/<name>` would send them."""
    return {name: render(REPO / "k8s" / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def cluster_model() -> Iterator[FakeEndpoint]:
    """The cluster's model server: OpenAI-compatible, answering every chat with a program."""
    with serving(text=CLUSTER_MODEL_ANSWER, models=[CLUSTER_MODEL_NAME]) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def ray_head(
    tmp_path_factory: pytest.TempPathFactory, cluster_model: FakeEndpoint
) -> Iterator[RayHead]:
    """A real local Ray head (jobs API, token auth) whose environment names the cluster's runs
    directory and model server (helpers.ray_head)."""
    with started_ray_head(tmp_path_factory.mktemp("ray-head"), cluster_model) as head:
        yield head
