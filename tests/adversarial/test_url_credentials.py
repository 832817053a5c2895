"""A Redis URL's credentials never reach a message: every text that shows a Redis URL shows it
through `shown_redis_url`, which hides everything between the scheme and the host's last `@`.

Searched with hypothesis over passwords of any characters (an `@`, `/`, `?` or `:` in one
included) and over the URL's shapes; then the messages a user sees when the URL is refused, when
the Redis it names does not answer, and from the command line.
"""

from __future__ import annotations

import asyncio
import os
from unittest import mock

import pytest
from helpers.cli import cli, swarmlab
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.core import CoordinatorUnavailable, SpecError
from swarmlab.runtime import Coordinator
from swarmlab.spec import check_redis_url, shown_redis_url

SECRET = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).map(lambda s: "Zq9!" + s)
"""A password: any characters, marked so that it cannot occur in the rest of the URL."""
SHAPES = (
    "redis://user:{pw}@127.0.0.1:6379/0",
    "redis://:{pw}@127.0.0.1:6379",
    "rediss://{pw}@cache.example:6380/1?ssl_cert_reqs=none",
    "unix://user:{pw}@/run/redis.sock",
    "redis://user:{pw}@127.0.0.1:notaport/0",
    "redis://user:{pw}@[::1/0",
    "http://user:{pw}@127.0.0.1:6379/0",
)


def _leaks(secret: str, message: str, shape: str) -> list[str]:
    """Pieces of the password (any 6 characters in a row) the message shows, beyond what the
    URL's own text around it holds."""
    windows = {secret[i : i + 6] for i in range(len(secret) - 5)}
    return [w for w in windows if w in message and w not in shape]


@given(SECRET, st.sampled_from(SHAPES))
def test_a_shown_url_never_holds_its_password(secret: str, shape: str) -> None:
    url = shape.format(pw=secret)
    shown = shown_redis_url(url)
    assert not _leaks(secret, shown, shape)
    assert shown.split("://", 1)[0] == url.split("://", 1)[0]
    assert shown.endswith(url.rpartition("@")[2])


@given(SECRET, st.sampled_from(SHAPES))
def test_a_refused_url_is_named_without_its_password(secret: str, shape: str) -> None:
    url = shape.format(pw=secret)
    told = ""
    try:
        check_redis_url(url)
    except SpecError as exc:
        told = str(exc)
    assert not _leaks(secret, told, shape)


def test_a_password_with_an_unescaped_question_mark_is_refused_without_echoing_it() -> None:
    """Its tail would read as the URL's options, and an option's name is shown when refused."""
    with pytest.raises(SpecError, match="percent-encode") as refused:
        check_redis_url("redis://u:Zq9!hunter2?x@127.0.0.1:6379/0")
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("shape", SHAPES[:2])
def test_an_unreachable_coordinator_is_named_without_the_password(
    shape: str, closed_port: int
) -> None:
    secret = "Zq9!hunter2@x:y"
    url = shape.format(pw=secret).replace("6379", str(closed_port))

    async def ping() -> str:
        coord = Coordinator(url, "run-x")
        try:
            await coord.ping()
        except CoordinatorUnavailable as exc:
            return str(exc)
        finally:
            await coord.close()
        raise AssertionError("a closed port answered")

    told = asyncio.run(ping())
    assert "unreachable" in told
    assert secret not in told
    assert "hunter2" not in told


def test_the_command_line_never_prints_the_password(closed_port: int) -> None:
    for args in (
        ["kill", "some-run", "--redis-url", f"redis://:hunter2@127.0.0.1:{closed_port}/0"],
        ["status", "some-run", "--redis-url", "redis://u:hunter2@127.0.0.1:x/0"],
        ["run", "paperclips", "--redis-url", "http://u:hunter2@127.0.0.1/0"],
    ):
        done = swarmlab(*args, timeout=60)
        assert done.returncode != 0
        assert "hunter2" not in done.stdout + done.stderr, args


TOKEN_SECRET = st.text(
    st.characters(codec="utf-8", exclude_categories=["Z", "C"], exclude_characters="'\"<>/?#\\"),
    min_size=1,
    max_size=40,
).map(lambda s: "Zq9!" + s)
"""A password inside free text: no blank or quote, which would end the URL in a sentence, and
none of `/?#\\`, which end a URL's authority: after one, what follows is no password but the
URL's path, and the URL names a host (it may even be valid)."""
NOWHERE = "/dev/null/never"
"""A run directory no run can make: nothing starts, whatever a URL turns out to be."""
BAD_URLS = (
    "http://user:{pw}@127.0.0.1:notaport/v1",
    "http://user:{pw}@[::1/v1",
    "https://{pw}@h:99999",
    "ray://u:{pw}@h:x",
)
URL_VARIABLES = (
    "SWARMLAB_MODEL_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "SWARMLAB_RAY_ADDRESS",
    "SWARMLAB_REDIS_URL",
)


@settings(max_examples=60, deadline=None)
@given(
    TOKEN_SECRET,
    st.sampled_from(BAD_URLS),
    st.sampled_from(URL_VARIABLES),
)
def test_a_refused_variable_is_named_without_its_password(
    secret: str, shape: str, variable: str
) -> None:
    """An environment variable's refusal quoted its URL whole, password and all."""
    url = shape.format(pw=secret)
    with mock.patch.dict(os.environ, {variable: url}):
        code, _, err, _ = cli("run", "paperclips", "--out", NOWHERE)
    assert code == 2, err
    assert secret[:6] not in err, err  # "Zq9!" and what follows: never in a message


@settings(max_examples=40, deadline=None)
@given(TOKEN_SECRET, st.sampled_from(BAD_URLS))
def test_a_refused_flag_or_spec_value_is_named_without_its_password(
    secret: str, shape: str
) -> None:
    """`--model openai:URL` was refused quoting the URL, password and all: every one-line
    error hides a URL's credentials, whatever said it."""
    url = shape.format(pw=secret)
    for args in (
        ("--model", f"openai:{url}"),
        ("--otlp-endpoint", url),
        ("--ray-address", url),
        ("--set", f"model=openai:{url}"),
    ):
        code, _, err, _ = cli("run", "paperclips", "--out", NOWHERE, *args)
        assert code == 2, (args, err)
        assert secret[:6] not in err, (args, err)
