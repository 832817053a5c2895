"""Jobs on a running Ray cluster, through its job server (the dashboard's HTTP API).

Like `_ray.py`, this module imports `ray` lazily, inside functions, so `import cluster` stays light.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from swarmlab.core import ClusterError, SpecError, parse_json

CONNECT_TIMEOUT_S = 10.0
# A cluster that has just started answers "No available agent to submit job" until its head's
# agent has registered; a loaded one may drop a connection now and then. Both pass.
NOT_READY = "No available agent"
NOT_FOUND = "Request failed with status code 404"
"""How Ray's job client says a job does not exist. Only the start of its message is read: the
rest holds the server's text and the address ("404" is in a port such as 40411)."""
RETRY_FOR_S = 60.0
RETRY_EVERY_S = 2.0
T = TypeVar("T")
# Ray's client narrates every upload at INFO; a CLI wants its own lines only.
_CHATTY_LOGGERS = ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging")


READ_TIMEOUT_S = 120.0
"""How long a request to the job server waits for its next bytes (Ray's client sets none, so a
server that never answered held `submit`, `fetch` and `status` for ever)."""
MAX_ANSWER_BYTES = 16 << 20
"""The most of one answer of the job server read (a status, a job's info, the version); past it
the answer is refused before it is parsed (one that never ended grew the process without bound).
A job's log is read apart, within `MAX_LOG_BYTES`."""


def _client_class() -> Any:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:  # pragma: no cover - ray[default] is a core dependency
        raise ClusterError(
            f"the Ray job client is not installed ({exc}); pip install 'ray[default]'"
        ) from None

    class BoundedClient(JobSubmissionClient):
        """Ray's job client, each request bounded in time and its answer in size."""

        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            return super()._do_request(
                method,
                endpoint,
                timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                stream=True,
                hooks={"response": _bounded_answer},
                **kwargs,
            )

    return BoundedClient


def _bounded_answer(response: Any, *_: Any, **__: Any) -> Any:
    """Read a streamed answer within `MAX_ANSWER_BYTES` (then Ray's client reads it as usual).
    An answer that broke off is a dropped connection, as requests has it (asked again where a
    dropped one is: `_dropped`)."""
    import requests

    try:
        body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    except Exception as exc:
        response.close()
        raise requests.exceptions.ConnectionError(
            f"the job server's answer broke off: {_first_line(exc)}"
        ) from None
    if len(body) > MAX_ANSWER_BYTES:
        response.close()
        raise ClusterError(f"the job server's answer is larger than {MAX_ANSWER_BYTES} bytes")
    response._content = body
    response._content_consumed = True
    return response


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _not_ready(exc: Exception) -> bool:
    return NOT_READY in str(exc)


def _dropped(exc: Exception) -> bool:
    return _not_ready(exc) or any(c.__name__ == "ConnectionError" for c in type(exc).__mro__)


def _retrying(
    call: Callable[[], T], transient: Callable[[Exception], bool], give_up_after: float
) -> T:
    """`call()`, again while it fails in a `transient` way, for at most `give_up_after` s."""
    deadline = time.monotonic() + give_up_after
    while True:
        try:
            return call()
        except Exception as exc:
            if not transient(exc) or time.monotonic() > deadline:
                raise
        time.sleep(RETRY_EVERY_S)


def _check_reachable(address: str, timeout: float) -> None:
    """Fail fast: the job client itself would wait forever on an address that never answers."""
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(f"no Ray job server at {address}: {exc.strerror or exc}") from None


MAX_LOG_BYTES = 64 << 20
"""The most of a job's log read at once (a run's job prints its progress and its summary)."""


class _LogUnread(ClusterError):
    """A job's log could not be read (the connection failed): asked again for a while."""


class JobServer:
    """A cluster's job server: `submit` a shell entrypoint, then follow `status` and `logs`.

    `token` is the cluster's Ray auth token (clusters started with token authentication).
    Every failure to reach or use the server raises `ClusterError` with a one-line message.
    """

    TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
    """Job statuses after which nothing changes any more."""

    def __init__(self, address: str, token: str | None = None) -> None:
        self.address = address
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._headers = headers or {}
        _check_reachable(address, CONNECT_TIMEOUT_S)
        client_class = _client_class()
        for name in _CHATTY_LOGGERS:  # after the import: Ray sets these levels when imported
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            self._client = client_class(address=address, headers=headers)
        except Exception as exc:  # ConnectionError, AuthenticationError, RuntimeError, ...
            raise ClusterError(
                f"no usable Ray job server at {address}: {_first_line(exc)}"
            ) from None

    def submit(
        self,
        entrypoint: str,
        *,
        submission_id: str,
        runtime_env: dict[str, Any],
        metadata: dict[str, str],
    ) -> str:
        """Start `entrypoint` (a shell command) on the cluster's head; returns the job id."""
        try:
            return str(
                # Only "not ready" is retried: after a dropped connection the job may exist.
                _retrying(
                    lambda: self._client.submit_job(
                        entrypoint=entrypoint,
                        submission_id=submission_id,
                        runtime_env=runtime_env,
                        metadata=metadata,
                    ),
                    _not_ready,
                    RETRY_FOR_S,
                )
            )
        except Exception as exc:
            raise ClusterError(f"the job server refused the job: {_first_line(exc)}") from None

    def exists(self, job_id: str) -> bool:
        try:
            _retrying(lambda: self._client.get_job_info(job_id), _dropped, 10.0)
        except Exception as exc:
            if isinstance(exc, RuntimeError) and str(exc).startswith(NOT_FOUND):
                return False
            raise ClusterError(f"could not look up job {job_id}: {_first_line(exc)}") from None
        return True

    def status(self, job_id: str) -> str:
        """`PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED` or `STOPPED`."""
        try:
            return str(_retrying(lambda: self._client.get_job_status(job_id), _dropped, 10.0).value)
        except Exception as exc:
            raise ClusterError(
                f"lost the job server at {self.address}: {_first_line(exc)}"
            ) from None

    def message(self, job_id: str) -> str:
        """The job server's own word on the job (why it failed, for instance)."""
        try:
            return str(self._client.get_job_info(job_id).message or "")
        except Exception:
            return ""

    def logs(self, job_id: str) -> str:
        """Everything the job printed so far (stdout and stderr together), within
        `MAX_LOG_BYTES` (`bounded_logs`), asked again for a while when the server drops it."""
        return _retrying(
            lambda: self.bounded_logs(job_id, MAX_LOG_BYTES),
            lambda exc: isinstance(exc, _LogUnread),
            10.0,
        )

    def bounded_logs(self, job_id: str, max_bytes: int) -> str:
        """The job's whole log, refused (`ClusterError`) past `max_bytes`: read as it arrives,
        never whole into memory first (the log may hold anything)."""
        url = f"{self.address}/api/jobs/{job_id}/logs"
        request = urllib.request.Request(url, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                raw = response.read(max_bytes + 1)
        except (OSError, urllib.error.URLError) as exc:
            raise _LogUnread(f"could not read job {job_id}'s log: {exc}") from None
        if len(raw) > max_bytes:
            raise ClusterError(f"job {job_id}'s log is larger than {max_bytes} bytes")
        try:
            answer = parse_json(raw, f"job {job_id}'s log")
        except SpecError as exc:
            raise ClusterError(str(exc)) from None
        logs = answer.get("logs") if isinstance(answer, dict) else None
        if not isinstance(logs, str):
            raise ClusterError(f"job {job_id}'s log is not the job server's JSON")
        return logs

    def wait(self, job_id: str, timeout_s: float, poll_s: float = 0.5) -> str:
        """The job's final status, once it has one (`ClusterError` after `timeout_s`)."""
        give_up = time.monotonic() + timeout_s
        while (status := self.status(job_id)) not in self.TERMINAL:
            if time.monotonic() > give_up:
                raise ClusterError(f"job {job_id} did not end within {timeout_s:.0f} s")
            time.sleep(poll_s)
        return status

    def delete(self, job_id: str) -> None:
        """Forget a finished job (its log too); a failure to is left alone."""
        try:
            self._client.delete_job(job_id)
        except Exception:
            logging.getLogger(__name__).debug("could not delete job %s", job_id)
