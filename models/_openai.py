"""The `openai` backend: any OpenAI-compatible chat server (vLLM's first of all).

One async HTTP client per backend; at most `max_in_flight` requests per endpoint in this
process (backends for the same base URL share the bound); retries with exponential backoff
and jitter on connection errors, 429 and 5xx, honouring Retry-After; one-line `ModelError`s
that name the endpoint.

Per-call headers (a W3C `traceparent`, say) come from the context variable `request_headers`,
so callers that only know `ModelBackend.generate(request)` need no other signature:

    token = request_headers.set({"traceparent": "00-...-01"})
    try:
        completion = await backend.generate(request)
    finally:
        request_headers.reset(token)

`httpx` is imported when a backend is built, so importing this module stays cheap.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
import weakref
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from swarmlab.core import ModelError
from swarmlab.spec import env_value

from ._base import (
    MAX_REPORTED_TOKENS,
    Completion,
    CompletionRequest,
    ModelBackend,
    Usage,
    most_answer_chars,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["OpenAIBackend", "request_headers"]

request_headers: ContextVar[Mapping[str, str] | None] = ContextVar(
    "swarmlab_request_headers", default=None
)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_MODEL_NAME = 200
MAX_ANSWER_BYTES = 32 << 20
"""The most bytes of one answer read from a server, as it arrives (a completion's text is cut
far below this); past it the call fails, and nothing more is read."""
MAX_ERROR_BYTES = 64 << 10
"""The most bytes of an error answer read for its message."""
# Chat templates wrap each prompt in role markers (and some add a default system prompt).
TEMPLATE_TOKENS = 32

# One semaphore per (event loop, endpoint): asyncio primitives belong to one loop.
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _gate(base_url: str, limit: int) -> asyncio.Semaphore:
    """The in-flight bound for an endpoint; the first backend to ask sets its size."""
    per_loop = _GATES.setdefault(asyncio.get_running_loop(), {})
    if base_url not in per_loop:
        per_loop[base_url] = asyncio.Semaphore(limit)
    return per_loop[base_url]


class _Retry(Exception):
    """One attempt failed in a way worth another try."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


class OpenAIBackend(ModelBackend):
    """Chat completions from an OpenAI-compatible server at `base_url` (`http://host:8000/v1`).

    `extra_body` adds server-specific fields to every request (vLLM's `top_k`, `ignore_eos`).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model_name: str | None = None,
        *,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        max_in_flight: int = 64,
        retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        api_key: str | None = None,
        label: str = "openai",
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ModelError(f"max_in_flight must be at least 1, got {max_in_flight}")
        if retries < 0:
            raise ModelError(f"retries must not be negative, got {retries}")
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_in_flight = max_in_flight
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.label = label
        self.extra_body = dict(extra_body or {})
        self._api_key = api_key if api_key is not None else env_value("SWARMLAB_API_KEY")
        self._client: httpx.AsyncClient | None = None
        self._name_lock: asyncio.Lock | None = None

    async def generate(self, request: CompletionRequest) -> Completion:
        base_url = await self._endpoint()
        model = await self.resolve_model_name()
        started = time.perf_counter()  # after a first call's server start and name lookup
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        body.update(self.extra_body)
        data = await self._call("POST", f"{base_url}/chat/completions", body)
        return self._completion(data, model, request, time.perf_counter() - started)

    def estimate_prompt_tokens(self, request: CompletionRequest) -> int:
        return super().estimate_prompt_tokens(request) + TEMPLATE_TOKENS

    async def resolve_model_name(self) -> str:
        """The model name to send: as given, or the one the server lists at `/models`."""
        if self.model_name:
            return self.model_name
        if self._name_lock is None:
            self._name_lock = asyncio.Lock()
        async with self._name_lock:
            if not self.model_name:
                base_url = await self._endpoint()
                data = await self._call("GET", f"{base_url}/models", None)
                listed = data.get("data")
                names = [
                    _text_of(m["id"])
                    for m in (listed if isinstance(listed, list) else [])
                    if isinstance(m, dict)
                    and isinstance(m.get("id"), str)
                    and 0 < len(m["id"]) <= MAX_MODEL_NAME
                ]
                if not names:
                    raise ModelError(f"model endpoint {base_url}: /models lists no model")
                if len(names) > 1:
                    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                    raise ModelError(
                        f"model endpoint {base_url} serves several models ({shown}): set model_name"
                    )
                self.model_name = names[0]
        return self.model_name

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _endpoint(self) -> str:
        """The base URL to call (subclasses that start their server first override this)."""
        return self.base_url

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s),
                limits=httpx.Limits(
                    max_connections=self.max_in_flight,
                    max_keepalive_connections=self.max_in_flight,
                ),
                trust_env=False,  # no proxy between the lab and its model server
            )
        return self._client

    async def _call(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        # Empty values (no current span, say) are left out rather than sent blank.
        headers.update({k: v for k, v in (request_headers.get() or {}).items() if v})
        gate = _gate(self.base_url, self.max_in_flight)
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                async with gate:
                    return await self._attempt(method, url, body, headers)
            except _Retry as exc:
                if attempt + 1 >= attempts:
                    tries = f"{attempts} attempt" + ("s" if attempts > 1 else "")
                    raise ModelError(
                        f"model endpoint {self.base_url}: {exc.reason} (after {tries})"
                    ) from None
                # Sleep outside the gate so one struggling call does not hold a slot.
                await asyncio.sleep(self._backoff(attempt, exc.wait_s))
        raise AssertionError("unreachable")

    async def _attempt(
        self, method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        import httpx

        try:
            async with self._http().stream(method, url, json=body, headers=headers) as reply:
                most = MAX_ANSWER_BYTES if reply.status_code < 400 else MAX_ERROR_BYTES
                raw = await _body(reply, most, self.timeout_s)
        except (httpx.ReadTimeout, TimeoutError):
            # The server took the request and is still working: another try would add load.
            raise ModelError(
                f"model endpoint {self.base_url}: no answer within {self.timeout_s:g} s"
            ) from None
        except httpx.ConnectError as exc:
            raise _Retry(f"cannot connect ({_reason(exc)})") from None
        except httpx.TransportError as exc:
            raise _Retry(f"{type(exc).__name__} ({_reason(exc)})") from None
        except AttributeError as exc:
            if not _socket_gone(exc):
                raise
            raise _Retry("the connection closed as it opened") from None
        if reply.status_code in RETRY_STATUS or reply.status_code >= 500:
            raise _Retry(
                f"HTTP {reply.status_code}{_server_message(raw)}",
                _retry_after(reply.headers.get("retry-after")),
            )
        if reply.status_code >= 400:
            raise ModelError(
                f"model endpoint {self.base_url}: HTTP {reply.status_code} on {method} "
                f"{url.removeprefix(self.base_url)}{_server_message(raw)}"
            )
        if raw is None:
            raise ModelError(
                f"model endpoint {self.base_url}: the answer is larger than "
                f"{MAX_ANSWER_BYTES >> 20} MiB"
            )
        data = _json_object(raw)
        if data is None:
            raise ModelError(f"model endpoint {self.base_url}: the answer is not a JSON object")
        return data

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The server said when; a little jitter keeps waiting callers from returning at once.
            return min(retry_after, self.max_backoff_s) * random.uniform(1.0, 1.1)
        cap = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return random.uniform(cap / 2, cap)

    def _completion(
        self, data: dict[str, Any], model: str, request: CompletionRequest, latency_s: float
    ) -> Completion:
        try:
            choice = data["choices"][0]
            text = choice.get("message", {}).get("content") or ""
            reason = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ModelError(
                f"model endpoint {self.base_url}: the answer has no choices[0].message"
            ) from None
        text = _text_of(text)
        most = most_answer_chars(request.max_tokens)
        if len(text) > most:  # more than any tokenizer makes of max_tokens: cut, as at the limit
            text, reason = text[:most], "length"
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        prompt = _reported(usage.get("prompt_tokens"))
        completion = _reported(usage.get("completion_tokens"))
        if prompt is None or completion is None:
            # A server that reports no usage (or none to believe) gets the pre-call estimate, so
            # caps still charge.
            prompt = self.estimate_prompt_tokens(request)
            completion = max(1, len(text) // 4) if text else 0
        served = data.get("model")
        fits = isinstance(served, str) and 0 < len(served) <= MAX_MODEL_NAME
        named = _text_of(served) if fits else model
        return Completion(
            text=text,
            usage=Usage(prompt_tokens=prompt, completion_tokens=completion),
            finish_reason="length" if reason == "length" else "stop",
            model=f"{self.label}:{named}",
            latency_s=latency_s,
        )


def _text_of(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of parts; a lone
    surrogate (JSON can carry one, Unicode text cannot) becomes '?'."""
    if isinstance(content, list):
        content = "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    if not isinstance(content, str):
        return ""
    return content.encode("utf-8", "replace").decode("utf-8")


def _reported(count: Any) -> int | None:
    """A token count a server reported, if it is one to believe."""
    if type(count) is int and 0 <= count <= MAX_REPORTED_TOKENS:
        return count
    return None


def _socket_gone(exc: AttributeError) -> bool:
    """The HTTP stack asked a connection the server closed as it opened for its socket, and got
    None (uvloop's transports give None once closed; httpcore and anyio expect a socket): a
    failed connection, not a fault of the lab."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename if tb is not None else ""
    return exc.obj is None and any(f"/{lib}/" in where for lib in ("anyio", "httpcore"))


def _reason(exc: BaseException) -> str:
    """What went wrong underneath httpx's wrapper ("All connection attempts failed")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return " ".join((str(exc) or type(exc).__name__).split())[:200]


async def _body(reply: httpx.Response, most: int, within_s: float) -> bytes | None:
    """An answer's body as it arrives: None past `most` bytes (nothing more is read), and a
    `TimeoutError` unless it is all there within `within_s` (a server that sends a byte now and
    then would otherwise hold the call for ever; httpx's timeout is per read)."""
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(within_s):
        async for chunk in reply.aiter_bytes():
            size += len(chunk)
            if size > most:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """The answer as a JSON object, or None (not JSON, nested past the parser's stack, or an
    integer Python will not convert)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _server_message(raw: bytes | None) -> str:
    """The error text a server put in its body, vLLM's and OpenAI's shapes both."""
    if raw is None:
        return f": (an answer over {MAX_ERROR_BYTES >> 10} KiB)"
    data = _json_object(raw)
    if data is None:
        text = " ".join(raw.decode("utf-8", "replace").split())[:200]
        return f": {text}" if text else ""
    error = data.get("error")
    message = error.get("message") if isinstance(error, dict) else data.get("message", error)
    if message:
        return ": " + " ".join(str(message).split())[:300]
    return ""


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
