"""Fixtures for the deployment tests: every overlay, rendered once per session."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.k8s_objects import OVERLAYS, REPO, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay's objects, as `kubectl apply -k k8s/overlays/<name>` would send them."""
    return {name: render(REPO / "k8s" / "overlays" / name) for name in OVERLAYS}
