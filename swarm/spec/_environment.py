"""The environment variables the lab reads, each declared once with its check.

A variable is read like a flag: hostile. `env_value(NAME)` gives its value checked the way the
matching flag is checked (a Redis URL as `--redis-url`, an OTLP protocol from `--otlp-protocol`'s
choices, ...), or None when it is unset or blank; a value that cannot work is a one-line
`SpecError` (exit 2) naming the variable. Commands that start something check every variable
first (`check_environment`), so a bad one stops them before any process, Redis key or run
directory exists. Nothing else in the lab reads these variables from `os.environ`
(`tests/spec/test_environment.py` scans for it).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from swarmlab.core import SpecError

from ._backends import model_problem
from ._names import check_redis_url, shown_redis_url, without_credentials

OTLP_PROTOCOLS = ("http/protobuf", "grpc")
MAX_SHOWN = 80
_WORD = re.compile(r"[\x21-\x7e]{1,200}")
"""A name or token: printable ASCII without spaces (it goes into a header or a Ray option)."""


def _shown(value: str) -> str:
    """A variable's value as a message quotes it: cut, a URL's user and password hidden."""
    value = shown_redis_url(value) if "://" in value else without_credentials(value)
    return repr(value[:MAX_SHOWN] + ("..." if len(value) > MAX_SHOWN else ""))


def _url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    """Why `value` is not a URL of one of `schemes` with a host and a port that parse."""
    if not value.isprintable() or " " in value:
        return "holds spaces or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "not a valid URL (its host or port cannot be read)"
    if parts.scheme not in schemes or not parts.hostname:
        return f"expected {' or '.join(s + '://' for s in schemes)}host:port"
    if port == 0:
        return "the port is not a number from 1 to 65535"
    return None


def check_http_url(value: str, what: str, example: str) -> str:
    """An http(s) URL with a host and a port that parse, e.g. `example`."""
    problem = _url_problem(value, ("http", "https"))
    if problem is not None:
        raise SpecError(f"{what} {_shown(value)}: {problem}; e.g. {example}")
    return value


def check_ray_address(value: str, what: str) -> str:
    """`auto`, `host:port`, or `ray://`, `http://`, `https://` then host and port."""
    if value == "auto":
        return value
    target = value if "://" in value else f"ray://{value}"
    problem = _url_problem(target, ("ray", "http", "https"))
    if problem is not None:
        raise SpecError(f"{what} {_shown(value)}: {problem}; e.g. 127.0.0.1:6379 or auto")
    return value


def _model_url(value: str, name: str) -> str:
    problem = model_problem(f"openai:{value}")
    if problem is not None:
        raise SpecError(
            f"{name} {_shown(value)}: {problem.replace('openai:', '')}; it names the cluster's "
            "OpenAI-compatible server, e.g. http://llm:8000/v1 (or unset it, or pass --model)"
        )
    return value


def _word(value: str, name: str) -> str:
    if not _WORD.fullmatch(value):
        raise SpecError(f"{name} {_shown(value)}: expected 1 to 200 printable characters, no space")
    return value


def _secret(value: str, name: str) -> str:
    if not re.fullmatch(r"[\x21-\x7e]{1,8192}", value):  # never quoted: it is a credential
        raise SpecError(f"{name}: expected 1 to 8192 printable characters, no space")
    return value


def _protocol(value: str, name: str) -> str:
    if value not in OTLP_PROTOCOLS:
        raise SpecError(f"{name} {_shown(value)}: expected one of {', '.join(OTLP_PROTOCOLS)}")
    return value


def _folder(value: str, name: str) -> str:
    path = Path(value)
    if not value.isprintable() or not path.is_absolute():
        raise SpecError(f"{name} {_shown(value)}: expected an absolute path, e.g. /home/me/state")
    if path.exists() and not path.is_dir():
        raise SpecError(f"{name} {_shown(value)}: is not a directory")
    return value


def _executable(value: str, name: str) -> str:
    if shutil.which(value) is None:  # an executable file (a path, or a name on PATH)
        raise SpecError(f"{name} {_shown(value)}: not an executable file (a Python with vLLM)")
    return value


def _seconds(value: str, name: str) -> str:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 < number <= 86_400:  # also refuses NaN
        raise SpecError(f"{name} {_shown(value)}: expected a number of seconds in (0, 86400]")
    return value


def _in_flight(value: str, name: str) -> str:
    if not value.isdigit() or not 1 <= int(value[:7]) <= 100_000 or len(value) > 7:
        raise SpecError(f"{name} {_shown(value)}: expected a whole number from 1 to 100000")
    return value


def _switch(value: str, name: str) -> str:
    if value not in ("0", "1"):
        raise SpecError(f"{name} {_shown(value)}: expected 1 (on) or 0 (off)")
    return value


@dataclass(frozen=True)
class Variable:
    check: Callable[[str, str], str]
    means: str


VARIABLES: dict[str, Variable] = {
    "SWARMLAB_MODEL_URL": Variable(_model_url, "the cluster's model server (a base URL)"),
    "SWARMLAB_MODEL_NAME": Variable(_word, "the name the cluster's model server serves"),
    "SWARMLAB_REDIS_URL": Variable(check_redis_url, "an existing Redis (as --redis-url)"),
    "SWARMLAB_RAY_ADDRESS": Variable(check_ray_address, "an existing Ray (as --ray-address)"),
    "RAY_ADDRESS": Variable(check_ray_address, "a Ray cluster's job server (as --address)"),
    "SWARMLAB_STATE_DIR": Variable(_folder, "the lab's state dir"),
    "XDG_STATE_HOME": Variable(_folder, "the state dir's parent when SWARMLAB_STATE_DIR is unset"),
    "XDG_CACHE_HOME": Variable(_folder, "where the local model's files are cached"),
    "OTEL_EXPORTER_OTLP_ENDPOINT": Variable(
        lambda v, n: check_http_url(v, n, "http://jaeger:4318"), "OTLP endpoint (--otlp-endpoint)"
    ),
    "OTEL_EXPORTER_OTLP_PROTOCOL": Variable(_protocol, "OTLP transport (--otlp-protocol)"),
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": Variable(_protocol, "OTLP transport of spans"),
    "SWARMLAB_JAEGER_URL": Variable(
        lambda v, n: check_http_url(v, n, "http://jaeger:16686"), "Jaeger's UI (--jaeger-url)"
    ),
    "SWARMLAB_RUNNER_RESOURCE": Variable(_word, "the Ray resource sandbox pods advertise"),
    "SWARMLAB_NO_RUNNER_WAIT_S": Variable(_seconds, "the bound on a wait for a runner"),
    "SWARMLAB_MODEL_IN_FLIGHT": Variable(_in_flight, "model requests in flight"),
    "SWARMLAB_API_KEY": Variable(_secret, "the OpenAI-compatible server's key"),
    "RAY_AUTH_TOKEN": Variable(_secret, "the Ray cluster's token"),
    "SWARMLAB_VLLM_PYTHON": Variable(_executable, "the interpreter that runs vLLM"),
    "SWARMLAB_WAIT_AT_GATE": Variable(_switch, "every wait for a turn parks at the gate"),
}


def env_value(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The variable `name` (declared in VARIABLES) checked, or None when unset or blank."""
    value = (os.environ if env is None else env).get(name, "").strip()
    return VARIABLES[name].check(value, name) if value else None


def check_environment(env: Mapping[str, str] | None = None) -> None:
    """Every variable the lab reads that is set, checked (the first bad one raises)."""
    for name in VARIABLES:
        env_value(name, env)


def state_root(env: Mapping[str, str] | None = None) -> Path:
    """The lab's state dir: $SWARMLAB_STATE_DIR, else $XDG_STATE_HOME/swarmlab (~/.local/state)."""
    given = env_value("SWARMLAB_STATE_DIR", env)
    if given:
        return Path(given)
    base = env_value("XDG_STATE_HOME", env)
    return (Path(base) if base else Path.home() / ".local" / "state") / "swarmlab"
