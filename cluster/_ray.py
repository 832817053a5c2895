"""Ray, in one place: an embedded local instance or a connection to a cluster.

This is the only module that imports `ray`, and it does so lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from swarmlab.core import ClusterError

# Ray puts unix sockets under its temp dir; their paths must stay under ~107 bytes.
_MAX_TEMP_DIR = 40

PROBE_TIMEOUT_S = 5.0
"""How long a cluster's address may take to accept a TCP connection before it counts as down."""

# Left to itself, `ray.init(address=...)` retries a GCS that does not answer for many minutes
# (about 20 attempts of 30 s each). While connecting, Ray is told to try once per second for a
# few seconds, each attempt bounded: a wrong address fails in about 15-20 s.
_CONNECT_BOUNDS = {
    "RAY_gcs_server_port_wait_time_s": "3",
    "RAY_py_gcs_connect_timeout_s": "10",
}


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a core dependency
        raise ClusterError(f"ray is not installed ({exc}); pip install 'ray[default]'") from None
    return ray


class RayCluster:
    """Connected Ray: `start_local(temp_dir)` or `connect(address)`; `shutdown()` undoes it."""

    def __init__(self) -> None:
        self.started_here = False
        self._link: Path | None = None
        self.temp_dir: Path | None = None
        """The temp dir the embedded instance uses (its processes name it on their command line)."""

    def start_local(self, temp_dir: Path, num_cpus: int | None = None) -> RayCluster:
        ray = _ray()
        if ray.is_initialized():  # a caller in this process already connected: share it
            return self
        temp_dir = Path(temp_dir).resolve()
        temp_dir.mkdir(parents=True, exist_ok=True)
        usable = temp_dir
        if len(str(temp_dir)) > _MAX_TEMP_DIR:
            # A short symlink keeps the socket paths legal while the files stay in the run dir.
            tag = hashlib.sha1(str(temp_dir).encode()).hexdigest()[:10]
            link = Path(tempfile.gettempdir()) / f"swl-{tag}"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(temp_dir)
            self._link = usable = link
        self.temp_dir = usable
        # Token auth stays on (Ray's default); only its start-up notice is hushed.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
            logging.ERROR
        )
        try:
            ray.init(
                _temp_dir=str(usable),
                _node_ip_address="127.0.0.1",
                num_cpus=num_cpus if num_cpus is not None else os.cpu_count(),
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=True,
            )
        except Exception as exc:  # ray raises many kinds here
            self._unlink()
            raise ClusterError(f"could not start a local Ray instance: {exc}") from None
        self.started_here = True
        return self

    def connect(self, address: str, auth_token_path: str | None = None) -> RayCluster:
        """Join a running cluster, or fail within seconds with one line saying why.
        `auth_token_path`: the cluster's token file (the warm instance's own)."""
        if auth_token_path is not None:
            _use_token(auth_token_path)
        ray = _ray()
        if ray.is_initialized():
            return self
        _probe(address)
        try:
            with _bounded_connect():
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except Exception as exc:
            raise ClusterError(
                f"could not connect to Ray at {address}: {_first_line(exc)}"
            ) from None
        return self

    def remote_class(self, cls: type, **options: Any) -> Any:
        """`ray.remote(cls)` with options: the one place a plain class becomes an actor."""
        return _ray().remote(cls).options(**options)

    def remote_function(self, fn: Any, **options: Any) -> Any:
        """`ray.remote(fn)` with options: the one place a function becomes a Ray task."""
        return _ray().remote(fn).options(**options)

    def wait(self, refs: list[Any], timeout: float | None = None) -> tuple[list[Any], list[Any]]:
        """Refs that are done within `timeout`, and the rest (one at least is returned)."""
        done, rest = _ray().wait(refs, num_returns=1, timeout=timeout)
        return list(done), list(rest)

    def get(self, refs: Any, timeout: float | None = None) -> Any:
        ray = _ray()
        try:
            return ray.get(refs, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(f"Ray did not answer within {timeout} s") from None
        except ray.exceptions.RayError as exc:
            raise ClusterError(f"a Ray actor failed: {str(exc).splitlines()[0]}") from None

    def kill(self, actor: Any) -> None:
        with contextlib.suppress(Exception):
            _ray().kill(actor)

    def shutdown(self) -> None:
        if self.started_here:
            _ray().shutdown()
            self.started_here = False
        self._unlink()

    def _unlink(self) -> None:
        if self._link is not None:
            self._link.unlink(missing_ok=True)
            self._link = None


def _use_token(path: str) -> None:
    """This process (and what it starts) authenticates to Ray with the token in `path`. Ray
    reads its mode once: where it was read already, it is told to read it again."""
    os.environ.pop("RAY_AUTH_TOKEN", None)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=path)
    with contextlib.suppress(Exception):  # Ray's own internals: absent in another version
        setup = importlib.import_module("ray._private.authentication.authentication_token_setup")
        importlib.import_module("ray._raylet").Config.initialize("")
        setup.AuthenticationTokenLoader.instance().reset_cache()


def _probe(address: str) -> None:
    """Refuse an address where nothing accepts a connection, before Ray starts retrying it.

    `auto` and other forms Ray resolves itself are left to Ray (and to `_bounded_connect`).
    """
    target = address if "://" in address else f"ray://{address}"
    parts = urlsplit(target)
    if address == "auto" or parts.scheme != "ray" or not parts.hostname:
        return
    try:
        port = parts.port
    except ValueError:
        raise ClusterError(f"Ray address {address!r}: the port is not a number") from None
    if port is None:
        return
    try:
        with socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterError(
            f"could not connect to Ray at {address}: nothing answers on "
            f"{parts.hostname}:{port} ({why}); is the cluster up?"
        ) from None


@contextlib.contextmanager
def _bounded_connect() -> Iterator[None]:
    """Ray's connection retries bounded for the duration of a connect, then as they were."""
    saved = {name: os.environ.get(name) for name in _CONNECT_BOUNDS}
    for name, bound in _CONNECT_BOUNDS.items():
        os.environ.setdefault(name, bound)  # an operator's own setting wins
    try:
        yield
    finally:
        for name, before in saved.items():
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
