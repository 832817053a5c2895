"""The programs' script connection: the same answers as redis-py's client, fail-closed errors."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from swarmlab.cluster import RedisServer
from swarmlab.runtime._scripts import (
    Incomplete,
    ScriptConnection,
    Subscriber,
    _Protocol,
    encode_command,
    parse_reply,
)

SCRIPTS = {
    "table": "return {'ok', 12, ARGV[1], {1, 'two', {}}, false}",
    "integer": "return tonumber(ARGV[1]) * 2",
    "status": "return redis.status_reply('FINE')",
    "nil": "return nil",
    "keys": "return {KEYS[1], KEYS[2], #ARGV}",
    "unicode": "return ARGV[1] .. '\u00e9\u6f22'",
}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def both(url: str, body: str, keys: list[str], args: list[Any]) -> tuple[Any, Any]:
    """What redis-py's Script answers and what the script connection answers."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    lean = ScriptConnection(url)
    try:
        script = client.register_script(body)
        expected = await script(keys=keys, args=args)
        got = await lean.evalsha(script.sha, body, keys, args)
        return expected, got
    finally:
        await lean.close()
        await client.aclose()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_equal_redis_py(redis_url: str, name: str) -> None:
    expected, got = run(both(redis_url, SCRIPTS[name], ["a:1", "b"], ["21", "x\r\ny", 3, 2.5]))
    assert got == expected


def test_an_error_reply_raises_what_redis_py_raises(redis_url: str) -> None:
    lean = ScriptConnection(redis_url)

    async def go() -> None:
        body = "return redis.error_reply('no such thing')"
        with pytest.raises(ResponseError, match="no such thing"):
            await lean.evalsha("0" * 40, body, [], [])
        assert await lean.command("PING") == "PONG"  # the connection is still good
        await lean.close()

    run(go())


def test_a_flushed_script_is_sent_whole(redis_url: str) -> None:
    sync = redis.Redis.from_url(redis_url)
    body = "return 'flushed ' .. ARGV[1]"
    sha = sync.script_load(body)
    sync.script_flush()
    lean = ScriptConnection(redis_url)

    async def go() -> Any:
        try:
            return await lean.evalsha(sha, body, [], ["once"])
        finally:
            await lean.close()

    assert run(go()) == "flushed once"
    assert sync.script_exists(sha) == [True]  # EVAL cached it again
    sync.close()


def test_many_calls_in_flight_each_get_their_own_reply(redis_url: str) -> None:
    lean = ScriptConnection(redis_url)
    sha = redis.Redis.from_url(redis_url).script_load("return {ARGV[1], string.rep('x', ARGV[2])}")

    async def go() -> list[Any]:
        calls = [lean.evalsha(sha, "", [], [str(i), i * 97 % 20_000]) for i in range(600)]
        try:
            return list(await asyncio.gather(*calls))
        finally:
            await lean.close()

    replies = run(go())
    assert replies == [[str(i), "x" * (i * 97 % 20_000)] for i in range(600)]


def test_replies_split_at_every_byte_are_read_whole() -> None:
    wire = b"*3\r\n$5\r\nhello\r\n:-7\r\n*2\r\n$-1\r\n-ERR bad\r\n+OK\r\n"
    for cut in range(1, len(wire)):
        protocol = _Protocol()
        protocol.transport = _NullTransport()
        loop = asyncio.new_event_loop()
        try:
            first = loop.create_future()
            second = loop.create_future()
            protocol.waiting.extend([(first, 0.0), (second, 0.0)])
            protocol.data_received(wire[:cut])
            protocol.data_received(wire[cut:])
            value = first.result()
            assert value[:2] == ["hello", -7]
            assert value[2][0] is None
            assert isinstance(value[2][1], ResponseError)
            assert second.result() == "OK"
            assert not protocol.buffer
        finally:
            loop.close()


def test_parse_refuses_what_is_not_resp() -> None:
    with pytest.raises(Incomplete):
        parse_reply(b"$10\r\nshort\r\n")
    with pytest.raises(ValueError, match="unexpected reply type"):
        parse_reply(b"?what\r\n")
    with pytest.raises(ValueError, match="bulk string of"):
        parse_reply(b"$999999999999\r\n")


def test_commands_are_encoded_as_redis_py_encodes_them() -> None:
    from redis.connection import Connection

    parts = ("EVALSHA", "abc", 2, "k1", "k\u00e9", 1.5, -3, b"\x00raw")
    packed = b"".join(Connection().pack_command(*parts))  # type: ignore[no-untyped-call]
    assert encode_command(*parts) == packed
    with pytest.raises(TypeError):
        encode_command("SET", "k", True)
    with pytest.raises(TypeError):
        encode_command("SET", "k", None)


def test_a_lost_connection_fails_calls_then_connects_again(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    lean = ScriptConnection(server.url)

    async def go() -> None:
        assert await lean.command("PING") == "PONG"
        in_flight = asyncio.ensure_future(lean.command("BLPOP", "never", 0))
        await asyncio.sleep(0.2)
        server.stop()
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(in_flight, 5)
        with pytest.raises(RedisConnectionError):
            await lean.command("PING")
        server.start()
        lean.options["port"] = server.port  # the restarted server listens on a new port
        assert await lean.command("PING") == "PONG"
        await lean.close()

    try:
        run(go())
    finally:
        server.stop()


def test_a_silent_server_is_a_timeout_not_a_hang() -> None:
    with _silent_server() as port:
        lean = ScriptConnection(f"redis://127.0.0.1:{port}/0", reply_timeout_s=0.3)

        async def go() -> float:
            began = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await asyncio.gather(lean.command("PING"), lean.command("PING"))
            return time.monotonic() - began

        assert run(go()) < 2.0


def test_password_user_and_database_from_the_url(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        admin = redis.Redis(host="127.0.0.1", port=server.port)
        admin.acl_setuser(
            "lab", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all"]
        )
        admin.config_set("requirepass", "topsecret")
        admin = redis.Redis(host="127.0.0.1", port=server.port, password="topsecret", db=3)
        admin.set("where", "db3")

        async def ask(url: str) -> Any:
            lean = ScriptConnection(url)
            try:
                return await lean.command("GET", "where")
            finally:
                await lean.close()

        assert run(ask(f"redis://:topsecret@127.0.0.1:{server.port}/3")) == "db3"
        assert run(ask(f"redis://lab:s3cret@127.0.0.1:{server.port}/3")) == "db3"
        assert run(ask(f"redis://lab:s3cret@127.0.0.1:{server.port}/0")) is None
        with pytest.raises(RedisConnectionError, match="refused AUTH"):
            run(ask(f"redis://:wrong@127.0.0.1:{server.port}/0"))
        admin.close()


def test_a_unix_socket_url(tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--save", "", "--dir", str(tmp_path), "--unixsocket", path],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

        async def go() -> Any:
            lean = ScriptConnection(f"unix://{path}")
            try:
                return await lean.evalsha("0" * 40, "return ARGV[1]", [], ["by socket"])
            finally:
                await lean.close()

        assert run(go()) == "by socket"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_one_connection_serves_event_loops_one_after_the_other(redis_url: str) -> None:
    lean = ScriptConnection(redis_url)
    assert run(lean.command("PING")) == "PONG"
    assert run(lean.command("PING")) == "PONG"  # a new loop: it connects again
    run(lean.close())


async def _subscribed(
    url: str, channels: list[str], publish: Any, expect: int
) -> tuple[list[tuple[str, str]], BaseException | None]:
    """What a subscriber hears while `publish(client)` runs (waiting for `expect` messages, up
    to 10 s, then a moment for any more), and how its listening ended."""
    heard: list[tuple[str, str]] = []
    subscribed = asyncio.Event()
    listening = asyncio.ensure_future(
        Subscriber(url).listen(channels, lambda ch, data: heard.append((ch, data)), subscribed)
    )
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        await asyncio.wait_for(subscribed.wait(), 5)  # from here on, nothing is missed
        await publish(client)
        give_up = time.monotonic() + 10
        while len(heard) < expect and not listening.done() and time.monotonic() < give_up:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # one message too many would be heard by now
    finally:
        await client.aclose()
    ended: BaseException | None = None
    if listening.done():
        ended = listening.exception()
    else:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
    return heard, ended


def test_a_subscriber_hears_every_message_of_its_channels_in_order(redis_url: str) -> None:
    async def publish(client: aioredis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        for i in range(2000):  # more than one read's worth, so messages split across reads
            pipe.publish("a" if i % 2 else "b", f"m{i}")
        pipe.publish("elsewhere", "not for us")
        pipe.publish("a", "caf\u00e9 \u6f22")
        await pipe.execute()

    heard, ended = run(_subscribed(redis_url, ["a", "b"], publish, 2001))
    expected = [("a" if i % 2 else "b", f"m{i}") for i in range(2000)]
    assert heard == [*expected, ("a", "caf\u00e9 \u6f22")]
    assert ended is None


def test_a_subscriber_authenticates_from_the_url(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        redis.Redis(host="127.0.0.1", port=server.port).config_set("requirepass", "s3cret")
        url = f"redis://:s3cret@127.0.0.1:{server.port}/0"

        async def publish(client: aioredis.Redis) -> None:
            await client.publish("c", "hello")

        assert run(_subscribed(url, ["c"], publish, 1)) == ([("c", "hello")], None)


def test_a_subscriber_whose_redis_goes_away_raises(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()

    async def go() -> None:
        listening = asyncio.ensure_future(Subscriber(server.url).listen(["c"], print))
        await asyncio.sleep(0.3)
        server.stop()
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(listening, 5)
        with pytest.raises(RedisConnectionError):
            await Subscriber(server.url).listen(["c"], print)

    try:
        run(go())
    finally:
        server.stop()


class _NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A TCP server that accepts and reads, and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not done.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        done.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
