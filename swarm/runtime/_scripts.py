"""Lua scripts over one pipelined Redis connection: the hot path of every capability call.

Every transition of a program is one EVALSHA. Through redis-py's client each one pays for a
pool checkout, a retry wrapper, a read timeout and a general reply parser, which together cost
more CPU on the runner than the round trip itself. `ScriptConnection` sends EVALSHA commands on
one connection as they come (many in flight at once: Redis answers one connection's commands in
order, so replies are matched first in, first out) and parses the few reply shapes RESP2 has.

`Subscriber` reads a runner's channels (turn notices, stops, wakes, the kill) the same way: a
message goes from the parser straight to a callback, where redis-py's pub/sub would parse it
through its general reader and hand it over through a task.

Both speak to what `redis://`, `rediss://` and `unix://` URLs name (with their user, password
and database). Over `rediss://` they speak TLS through asyncio's own `ssl` support, with the TLS
options a URL may carry (`swarmlab.spec.REDIS_TLS_OPTIONS`) applied as redis-py applies them, so
one URL connects, or is refused, the same way over every client of the run's Redis.

Failures are redis-py's exceptions, so the coordinator's fail-closed handling is unchanged: a
lost connection fails every call in flight with `ConnectionError` (the next call connects
again), a reply slower than `reply_timeout_s` closes the connection with `TimeoutError`, an error
reply is `ResponseError` (`NoScriptError` when Redis lost the script, which is then sent whole).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from swarmlab.spec import REDIS_SCHEMES, redis_url_problem

CONNECT_TIMEOUT_S = 5.0
"""The whole opening of a connection: TCP, the TLS handshake, AUTH and SELECT."""
REPLY_TIMEOUT_S = 30.0
FILES = ("_ca_certs", "_certfile", "_keyfile")
"""The TLS options that name files."""
MAX_REPLY_BYTES = 512 * 1024 * 1024
"""Redis's own limit on one bulk string: a longer length is a broken stream, not a reply."""


class Incomplete(Exception):
    """The buffer does not hold a whole reply yet."""


def encode_command(*parts: Any) -> bytes:
    """One command in RESP (an array of bulk strings), as redis-py encodes values."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if isinstance(part, bytes):
            data = part
        elif isinstance(part, str):
            data = part.encode()
        elif isinstance(part, bool):
            raise TypeError("a bool is not a Redis value: send '1' or '0'")
        elif isinstance(part, int):
            data = b"%d" % part
        elif isinstance(part, float):
            data = repr(part).encode()
        else:
            raise TypeError(f"a {type(part).__name__} is not a Redis value")
        out.append(b"$%d\r\n" % len(data))
        out.append(data)
        out.append(b"\r\n")
    return b"".join(out)


def parse_reply(buf: bytes | bytearray, pos: int = 0) -> tuple[Any, int]:
    """One RESP2 reply at `pos`: (value, the position after it). Bulk strings are decoded as
    UTF-8; an error reply is a `ResponseError` value (raised by the caller when it is the whole
    reply, kept in place inside an array, as redis-py does). Raises `Incomplete`."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    kind, line, after = buf[pos : pos + 1], bytes(buf[pos + 1 : end]), end + 2
    if kind == b"$":
        return _bulk(buf, int(line), after)
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            item, after = parse_reply(buf, after)
            items.append(item)
        return items, after
    if kind == b":":
        return int(line), after
    if kind == b"+":
        return line.decode(), after
    if kind == b"-":
        message = line.decode(errors="replace")
        error = NoScriptError if message.startswith("NOSCRIPT") else ResponseError
        return error(message), after
    raise ValueError(f"unexpected reply type {bytes(kind)!r}")


def _bulk(buf: bytes | bytearray, size: int, at: int) -> tuple[str | None, int]:
    if size < 0:
        return None, at
    if size > MAX_REPLY_BYTES:
        raise ValueError(f"bulk string of {size} bytes")
    if len(buf) < at + size + 2:
        raise Incomplete
    return bytes(buf[at : at + size]).decode(), at + size + 2


class _Protocol(asyncio.Protocol):
    """Replies matched to waiting calls, first in, first out."""

    def __init__(self) -> None:
        self.transport: Any = None  # an asyncio.Transport, or uvloop's (Ray's actors run on it)
        self.buffer = bytearray()
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.lost: Exception | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.reply_timeout_s = REPLY_TIMEOUT_S

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        pos = 0
        try:
            while self.expecting():
                value, pos = parse_reply(self.buffer, pos)
                self.deliver(value)
        except Incomplete:
            pass
        except ValueError as exc:
            self.fail(RedisConnectionError(f"unreadable reply from Redis: {exc}"))
            return
        del self.buffer[:pos]

    def expecting(self) -> bool:
        """Whether a reply may come (only answers to calls, on a plain connection)."""
        return bool(self.waiting)

    def deliver(self, value: Any) -> None:
        future, _ = self.waiting.popleft()
        if not future.done():
            future.set_result(value)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"connection to Redis lost ({exc or 'closed'})"))

    def fail(self, error: Exception) -> None:
        """Fail every call in flight; the connection is not used again."""
        if self.lost is None:
            self.lost = error
        if self._watchdog is not None:
            self._watchdog.cancel()
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.lost is not None:
            raise self.lost
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((future, time.monotonic()))
        self.transport.write(command)
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.reply_timeout_s, self._check)
        return future

    def _check(self) -> None:
        """One timer per connection (not one per call): fail it when its oldest call has
        waited longer than the reply timeout."""
        self._watchdog = None
        if not self.waiting or self.lost is not None:
            return
        waited = time.monotonic() - self.waiting[0][1]
        if waited >= self.reply_timeout_s:
            self.fail(RedisTimeoutError(f"no reply from Redis in {self.reply_timeout_s:.0f} s"))
            return
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self.reply_timeout_s - waited, self._check)


P = TypeVar("P", bound=_Protocol)


class _Pushes(_Protocol):
    """A subscribed connection: published messages go to a callback, other replies (AUTH,
    SUBSCRIBE confirmations) to the calls that wait for them."""

    def __init__(self, on_message: Callable[[str, str], None]) -> None:
        super().__init__()
        self.on_message = on_message
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def expecting(self) -> bool:
        return True  # messages come unasked

    def deliver(self, value: Any) -> None:
        if isinstance(value, list) and len(value) == 3 and value[0] == "message":
            self.on_message(value[1], value[2])
        elif self.waiting:
            super().deliver(value)

    def fail(self, error: Exception) -> None:
        super().fail(error)
        if not self.closed.done():
            self.closed.set_exception(error)
            self.closed.exception()  # read here: nobody may be listening any more


class ScriptConnection:
    """EVALSHA over one pipelined connection to the Redis a URL names."""

    def __init__(self, url: str, reply_timeout_s: float = REPLY_TIMEOUT_S) -> None:
        if not self.usable(url):
            raise ValueError(f"{url.split(':', 1)[0]}:// is not a Redis URL")
        problem = redis_url_problem(url)
        if problem is not None:
            raise ValueError(f"Redis URL: {problem}")
        self.options = parse_url(url)
        self.tls = url.startswith("rediss://")
        self._tls_context: ssl.SSLContext | None = None
        self.reply_timeout_s = reply_timeout_s
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Lock | None = None

    @staticmethod
    def usable(url: str) -> bool:
        return url.startswith(REDIS_SCHEMES)

    async def evalsha(self, sha: str, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a loaded script; a Redis that has lost it gets the whole script."""
        reply = await self.command("EVALSHA", sha, len(keys), *keys, *args)
        if isinstance(reply, NoScriptError):
            reply = await self.command("EVAL", script, len(keys), *keys, *args)
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def command(self, *parts: Any) -> Any:
        """Send one command; its reply (an error reply is returned, not raised)."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None or self._loop is not _running_loop():
            protocol = await self._connect()
        return await protocol.send(encode_command(*parts))

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop: start over
            self._protocol, self._loop, self._connecting = None, loop, asyncio.Lock()
        assert self._connecting is not None
        async with self._connecting:
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            try:
                protocol = await asyncio.wait_for(self._open(loop, _Protocol), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot connect to Redis: {exc}") from None
            self._protocol = protocol
            return protocol

    async def _open(self, loop: asyncio.AbstractEventLoop, make: Callable[[], P]) -> P:
        options = self.options
        if "path" in options:
            _, protocol = await loop.create_unix_connection(make, options["path"])
        else:
            host = options.get("host", "localhost")
            tls = self._tls() if self.tls else None
            _, protocol = await loop.create_connection(
                make,
                host,
                int(options.get("port", 6379)),
                ssl=tls,
                server_hostname=host if tls is not None else None,
            )
        protocol.reply_timeout_s = self.reply_timeout_s
        hello: list[tuple[Any, ...]] = []
        if options.get("password") is not None:
            user = options.get("username")
            password = options["password"]
            hello.append(("AUTH", user, password) if user else ("AUTH", password))
        if int(options.get("db", 0) or 0):
            hello.append(("SELECT", int(options["db"])))
        for parts in hello:
            reply = await protocol.send(encode_command(*parts))
            if isinstance(reply, ResponseError):
                protocol.fail(RedisConnectionError(f"Redis refused {parts[0]}: {reply}"))
                raise RedisConnectionError(f"Redis refused {parts[0]}: {reply}")
        return protocol

    def _tls(self) -> ssl.SSLContext:
        """The URL's TLS settings, built on first use (it reads the certificate files)."""
        if self._tls_context is None:
            try:
                self._tls_context = tls_context(self.options)
            except (OSError, ValueError) as exc:  # a missing or unreadable file
                files = {k: v for k, v in self.options.items() if str(k).endswith(FILES)}
                raise RedisConnectionError(
                    f"cannot load the TLS files of the Redis URL {files}: {exc}"
                ) from None
        return self._tls_context

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            if self._loop is _running_loop():
                protocol.transport.close()
            else:  # its loop is gone: nothing to close it on
                protocol.lost = protocol.lost or RedisConnectionError("closed")


class Subscriber:
    """Messages of some channels of the Redis a URL names, handed to a callback as they come."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def listen(
        self,
        channels: Sequence[str],
        on_message: Callable[[str, str], None],
        subscribed: asyncio.Event | None = None,
    ) -> None:
        """Subscribe and call `on_message(channel, data)` for each message, until the
        connection is lost (raises `ConnectionError`) or the caller is cancelled. `subscribed`
        is set once every channel is subscribed (no message sent after that is missed)."""
        loop = asyncio.get_running_loop()
        opener = ScriptConnection(self.url)
        try:
            protocol = await asyncio.wait_for(
                opener._open(loop, lambda: _Pushes(on_message)), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from None
        try:
            for channel in channels:
                await protocol.send(encode_command("SUBSCRIBE", channel))
            if subscribed is not None:
                subscribed.set()
            await protocol.closed
        finally:
            if protocol.transport is not None:
                protocol.transport.close()


def tls_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    """A `rediss://` URL's TLS settings (`parse_url`'s options), as redis-py's client applies
    them: the server's certificate checked against the system's CAs and `ssl_ca_certs`, its name
    checked, a client certificate sent when `ssl_certfile` names one."""
    required = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
    verify = required[options.get("ssl_cert_reqs", "required")]
    context = ssl.create_default_context()
    context.check_hostname = bool(options.get("ssl_check_hostname", True)) and (
        verify != ssl.CERT_NONE
    )
    context.verify_mode = verify
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    if options.get("ssl_ca_certs"):
        context.load_verify_locations(cafile=options["ssl_ca_certs"])
    return context


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
