"""The programs' script connection over TLS: a real redis-server that speaks only TLS answers
the script connection and the subscriber as it answers redis-py's client, a whole run over
`rediss://` grows the tree it grows over `redis://`, a wrong CA fails in one line, and every URL
option is either applied as redis-py applies it or refused in one line."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis.asyncio as aioredis
from helpers.cli import one_line_error, swarmlab
from helpers.tls_redis import Certificates, TlsRedis, make_certificates
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.core import SpecError
from swarmlab.records import RunResult
from swarmlab.runtime import RunOptions, run_experiment
from swarmlab.runtime._coordinator import Coordinator
from swarmlab.runtime._scripts import ScriptConnection, Subscriber, tls_context
from swarmlab.spec import check_redis_url, redis_url_problem
from swarmlab.spec._names import REDIS_URL_OPTIONS

SCRIPT = "return {'ok', 12, ARGV[1], {1, 'two', {}}, false, KEYS[1]}"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    with TlsRedis(tmp_path_factory.mktemp("tls-redis")) as server:
        yield server


async def _both(url: str) -> tuple[Any, Any, list[tuple[str, str]]]:
    """redis-py's answer and the script connection's to one script, and what a subscriber
    heard of two messages."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    lean = ScriptConnection(url)
    heard: list[tuple[str, str]] = []
    subscribed = asyncio.Event()
    listening = asyncio.ensure_future(
        Subscriber(url).listen(["c"], lambda ch, data: heard.append((ch, data)), subscribed)
    )
    try:
        script = client.register_script(SCRIPT)
        expected = await script(keys=["k"], args=["caf\u00e9"])
        got = await lean.evalsha(script.sha, SCRIPT, ["k"], ["caf\u00e9"])
        await asyncio.wait_for(subscribed.wait(), 5)
        await client.publish("c", "one")
        await client.publish("c", "two")
        await asyncio.sleep(0.2)
        return expected, got, heard
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await lean.close()
        await client.aclose()


def test_scripts_and_messages_go_over_tls(tls_redis: TlsRedis) -> None:
    expected, got, heard = asyncio.run(_both(tls_redis.url()))
    assert got == expected == ["ok", 12, "caf\u00e9", [1, "two", []], None, "k"]
    assert heard == [("c", "one"), ("c", "two")]


def test_a_tls_coordinator_sends_scripts_over_the_script_connection(tls_redis: TlsRedis) -> None:
    coordinator = Coordinator(tls_redis.url(), "tls-run")
    try:
        assert isinstance(coordinator.scripts, ScriptConnection)  # the path the benchmarks measure
        assert asyncio.run(coordinator.scripts.command("PING")) == "PONG"
    finally:
        asyncio.run(coordinator.close())


def test_the_server_name_is_checked_by_name_too(tls_redis: TlsRedis) -> None:
    url = tls_redis.url().replace("127.0.0.1", "localhost")
    expected, got, _ = asyncio.run(_both(url))
    assert got == expected


def test_a_wrong_ca_fails_in_one_line(tls_redis: TlsRedis) -> None:
    url = tls_redis.url(ca=tls_redis.certificates.other_ca)

    async def go() -> list[str]:
        messages = []
        for attempt in (
            ScriptConnection(url).command("PING"),
            Subscriber(url).listen(["c"], print),
        ):
            with pytest.raises(RedisConnectionError) as caught:
                await asyncio.wait_for(attempt, 10)
            messages.append(str(caught.value))
        return messages

    for message in asyncio.run(go()):
        assert "certificate verify failed" in message
        assert "\n" not in message


def test_a_missing_ca_file_is_named_in_one_line(tls_redis: TlsRedis, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.crt"
    with pytest.raises(RedisConnectionError) as caught:
        asyncio.run(ScriptConnection(tls_redis.url(ca=missing)).command("PING"))
    assert str(missing) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_run_with_a_wrong_ca_exits_1_in_one_line(tls_redis: TlsRedis) -> None:
    url = tls_redis.url(ca=tls_redis.certificates.other_ca)
    done = swarmlab("run", "paperclips", "--redis-url", url, timeout=120)
    one_line_error(done, 1, "unreachable", "certificate verify failed")


def test_an_unsupported_option_exits_2_in_one_line() -> None:
    done = swarmlab("run", "paperclips", "--redis-url", "rediss://127.0.0.1:1/0?ssl_ciphers=ALL")
    one_line_error(done, 2, "ssl_ciphers", "not supported")


def _run(out: Path, url: str) -> RunResult:
    spec = load_spec("paperclips", ["seed=3", "caps.programs=25"])
    options = RunOptions(run_id=out.name, out_dir=out, redis_url=url, progress=Progress(quiet=True))
    return run_experiment(spec, options)


def _tree(result: RunResult) -> list[tuple[Any, ...]]:
    return [(p.id, p.parent_id, p.code, p.status, repr(p.result), p.error) for p in result.programs]


@pytest.mark.slow
def test_a_run_over_tls_grows_the_tree_it_grows_in_the_clear(
    tls_redis: TlsRedis, redis_url: str, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    clear = _run(tmp_path / "clear", redis_url)
    tls = _run(tmp_path / "tls", tls_redis.url())
    assert clear.status == tls.status == "completed"
    assert len(tls.programs) > 5
    assert _tree(tls) == _tree(clear)
    assert tls.outcome == clear.outcome


# --- every option: applied as redis-py applies it, or refused ------------------------------

_VALUES = {
    "db": st.sampled_from(["0", "3", "x", "-1", ""]),
    "ssl_cert_reqs": st.sampled_from(["none", "optional", "required", "REQUIRED", "", "maybe"]),
    "ssl_check_hostname": st.sampled_from(["true", "False", "no", "1", "0", "", "perhaps"]),
    # The files are the `certs` fixture's: the test puts their paths in place of these names.
    "ssl_ca_certs": st.just("ca"),
    "ssl_certfile": st.just("client_cert"),
    "ssl_keyfile": st.just("client_key"),
}
_OTHER_NAMES = st.sampled_from(
    ["socket_timeout", "protocol", "ssl_ciphers", "ssl_password", "ssl_min_version", "ssl_ca_path"]
) | st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@st.composite
def _queries(draw: st.DrawFn) -> list[tuple[str, str]]:
    names = draw(st.lists(st.sampled_from(REDIS_URL_OPTIONS) | _OTHER_NAMES, max_size=5))
    return [(n, draw(_VALUES.get(n, st.text(max_size=5)))) for n in names]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["redis", "rediss", "unix"]),
    query=_queries(),
)
def test_every_url_option_is_applied_as_redis_py_applies_it_or_refused(
    certs: Certificates, scheme: str, query: list[tuple[str, str]]
) -> None:
    files = {n: str(getattr(certs, n)) for n in ("ca", "client_cert", "client_key")}
    query = [(name, files.get(value, value)) for name, value in query]
    where = "/tmp/redis.sock" if scheme == "unix" else "127.0.0.1:6380/0"
    url = f"{scheme}://{where}?{urlencode(query)}"
    problem = redis_url_problem(url)
    if problem is not None:
        assert "\n" not in problem
        with pytest.raises(ValueError, match="Redis URL: ") as caught:
            ScriptConnection(url)
        assert "\n" not in str(caught.value)
        with pytest.raises(SpecError, match="--redis-url: "):
            check_redis_url(url)
        return
    lean = ScriptConnection(url)
    options: dict[str, Any] = {k: v for k, v in parse_url(url).items() if k != "connection_class"}
    assert lean.options == parse_url(url)  # the same reading as redis-py's
    if scheme != "rediss":
        assert not any(name.startswith("ssl_") for name, _ in query)
        return
    keys = ("host", "port", "db")
    ours = _built(lambda: tls_context(lean.options))
    theirs = _built(
        lambda: SSLConnection(
            **{k: v for k, v in options.items() if k not in keys}
        ).ssl_context.get()
    )
    if not isinstance(ours, ssl.SSLContext) or not isinstance(theirs, ssl.SSLContext):
        assert type(ours) is type(theirs)  # a client certificate without its key: both refuse
        return
    assert ours.verify_mode == theirs.verify_mode
    assert ours.check_hostname == theirs.check_hostname
    assert len(ours.get_ca_certs()) == len(theirs.get_ca_certs())
    assert ours.verify_mode != ssl.CERT_NONE or not ours.check_hostname


def _built(make: Callable[[], ssl.SSLContext]) -> ssl.SSLContext | Exception:
    try:
        return make()
    except Exception as exc:
        return exc
