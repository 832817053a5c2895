"""Which model backends exist: the `swarmlab.models` entry-point group, asked without importing
any backend (the built-in ones are declared in pyproject.toml like a third party's would be)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import EntryPoint, distributions
from urllib.parse import urlsplit

BACKENDS_GROUP = "swarmlab.models"


@cache
def backend_entry_points() -> dict[str, EntryPoint]:
    """Backend kind -> its factory's entry point.

    Read from every installed distribution rather than one per name: a stale metadata folder
    of an earlier build (a `swarmlab.egg-info` in the working directory, found first) must not
    hide the installed one's backends.
    """
    found: dict[str, EntryPoint] = {}
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group == BACKENDS_GROUP:
                found.setdefault(ep.name, ep)
    return found


def backend_kinds() -> list[str]:
    """The kinds a spec's `model` may start with (`sim`, `openai`, ...)."""
    return sorted(backend_entry_points())


def _no_argument(kind: str) -> Callable[[str], str | None]:
    def check(target: str) -> str | None:
        return f"the {kind} backend takes no argument (write '{kind}')" if target else None

    return check


def _base_url(target: str) -> str | None:
    if not target.isprintable() or " " in target:
        return "the URL holds spaces or control characters"
    try:
        parts = urlsplit(target)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:  # an unclosed `[` of an IPv6 host, a port that is not a number
        return "the URL's host or port cannot be read (a port is a number from 1 to 65535)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "give a base URL, e.g. openai:http://host:8000/v1"
    if port == 0:
        return "the URL's port is not a number from 1 to 65535"
    return None


def _run_dir(target: str) -> str | None:
    return None if target.strip() else "needs a run directory, e.g. replay:runs/<run-id>"


_TARGETS: dict[str, Callable[[str], str | None]] = {
    "sim": _no_argument("sim"),
    "local": _no_argument("local"),
    "openai": _base_url,
    "replay": _run_dir,
}
"""What follows `kind:` in a model string, for the built-in kinds (a third-party backend checks
its own when it is created)."""


def model_problem(model: str) -> str | None:
    """Why a model string (`kind` or `kind:target`) cannot work, or None if it can.

    Checked when the spec is read, so a bad `--model` is a one-line exit 2 before any server,
    Ray actor or Redis key exists.
    """
    kind, _, target = model.partition(":")
    known = backend_kinds()
    if kind not in known:
        return (
            f"unknown model backend {kind!r} (known: {', '.join(known)}; e.g. sim, "
            "openai:<base-url>, replay:<run-dir>)"
        )
    check = _TARGETS.get(kind)
    return check(target) if check is not None else None
