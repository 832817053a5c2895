"""Every environment variable the lab reads is read like a flag: hostile. A value that cannot
work is one line naming the variable, exit 2, before anything starts (no run directory); a value
that is taken works where it is used (a URL's host and port parse, a protocol is one the lab
speaks, a folder is absolute)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from helpers.cli import one_line_error, swarmlab
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.core import SpecError
from swarmlab.spec import OTLP_PROTOCOLS, VARIABLES, env_value

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["swarm", "models", "observability", "cluster"]

BAD = {
    "SWARMLAB_MODEL_URL": "http://[::1",
    "SWARMLAB_MODEL_NAME": "two words",
    "SWARMLAB_REDIS_URL": "redis://h:abc/0",
    "SWARMLAB_RAY_ADDRESS": "h:99999",
    "RAY_ADDRESS": "[::1",
    "SWARMLAB_STATE_DIR": "relative/state",
    "XDG_STATE_HOME": "relative",
    "XDG_CACHE_HOME": "relative",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "jaeger:4318",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
    "SWARMLAB_JAEGER_URL": "http://h:abc",
    "SWARMLAB_RUNNER_RESOURCE": "two words",
    "SWARMLAB_NO_RUNNER_WAIT_S": "nan",
    "SWARMLAB_MODEL_IN_FLIGHT": "0",
    "SWARMLAB_API_KEY": "a\x01b",
    "RAY_AUTH_TOKEN": "a b",
    "SWARMLAB_VLLM_PYTHON": "/nonexistent/python",
    "SWARMLAB_WAIT_AT_GATE": "yes",
}


def test_every_variable_has_a_bad_value_here() -> None:
    assert set(BAD) == set(VARIABLES)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_variable_stops_run_in_one_line_before_anything_starts(
    name: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    env: dict[str, Any] = {name: BAD[name]}  # the variable's name as a keyword
    done = swarmlab("run", "paperclips", "--out", str(out), "--no-telemetry", **env)
    one_line_error(done, 2, name)
    assert not out.exists()


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999/v1", "http://h:abc/v1"])
def test_a_cluster_model_url_whose_host_or_port_cannot_be_read_is_refused(
    url: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    done = swarmlab("run", "paperclips", "--out", str(out), SWARMLAB_MODEL_URL=url)
    one_line_error(done, 2, "SWARMLAB_MODEL_URL", url)
    assert not out.exists()


@pytest.mark.parametrize(
    ("flag", "value"), [("--ray-address", "h:abc"), ("--otlp-endpoint", "http://[::1")]
)
def test_the_matching_flag_is_checked_the_same_way(flag: str, value: str) -> None:
    one_line_error(swarmlab("run", "paperclips", flag, value), 2, flag)


def _url_works(schemes: tuple[str, ...]) -> Callable[[str], bool]:
    def works(value: str) -> bool:
        parts = urlsplit(value if "://" in value else f"ray://{value}")
        return parts.scheme in schemes and bool(parts.hostname) and parts.port != 0

    return works


WORKS: dict[str, Callable[[str], bool]] = {
    "SWARMLAB_MODEL_URL": _url_works(("http", "https")),
    "OTEL_EXPORTER_OTLP_ENDPOINT": _url_works(("http", "https")),
    "SWARMLAB_JAEGER_URL": _url_works(("http", "https")),
    "SWARMLAB_RAY_ADDRESS": lambda v: v == "auto" or _url_works(("ray", "http", "https"))(v),
    "RAY_ADDRESS": lambda v: v == "auto" or _url_works(("ray", "http", "https"))(v),
    "SWARMLAB_REDIS_URL": lambda v: urlsplit(v).port != -1,
    "OTEL_EXPORTER_OTLP_PROTOCOL": lambda v: v in OTLP_PROTOCOLS,
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": lambda v: v in OTLP_PROTOCOLS,
    "SWARMLAB_STATE_DIR": lambda v: Path(v).is_absolute(),
    "XDG_STATE_HOME": lambda v: Path(v).is_absolute(),
    "XDG_CACHE_HOME": lambda v: Path(v).is_absolute(),
    "SWARMLAB_NO_RUNNER_WAIT_S": lambda v: 0 < float(v) <= 86_400,
    "SWARMLAB_MODEL_IN_FLIGHT": lambda v: 1 <= int(v) <= 100_000,
    "SWARMLAB_MODEL_NAME": lambda v: v.isprintable() and " " not in v,
    "SWARMLAB_RUNNER_RESOURCE": lambda v: v.isprintable() and " " not in v,
    "SWARMLAB_API_KEY": lambda v: v.isascii() and v.isprintable() and " " not in v,
    "RAY_AUTH_TOKEN": lambda v: v.isascii() and v.isprintable() and " " not in v,
    "SWARMLAB_VLLM_PYTHON": lambda v: Path(v).is_file(),
    "SWARMLAB_WAIT_AT_GATE": lambda v: v in ("0", "1"),
}

PIECES = st.sampled_from(
    [
        "http://", "https://", "ray://", "redis://", "ftp://", "//", "[", "]", "::1", "[::1]",
        "h", "127.0.0.1", ":", ":0", ":99999", ":abc", ":-1", ":8000", "/v1", "@", "?", "#", "%",
        " ", "\t", "\n", "\x00", "\u2028", "é", "/", "..", "auto", "grpc", "http/protobuf",
        "nan", "inf", "1e9", "0", "5", "-1", "0.5", "1_0", "+3", "/usr/bin/env",
    ]
)  # fmt: skip
VALUES = st.lists(PIECES | st.text(max_size=4), max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(VARIABLES)), value=VALUES)
def test_a_variable_is_refused_in_one_line_or_taken_as_a_value_that_works(
    name: str, value: str
) -> None:
    try:
        taken = env_value(name, {name: value})
    except SpecError as exc:
        message = str(exc)
        assert message.startswith(name), message
        assert "\n" not in message
        assert len(message) < 400
        return
    if taken is not None:
        assert taken == value.strip()
        assert WORKS[name](taken), (name, taken)


READS = re.compile(r"""(?:environ\.get|getenv|environ\[)\(?\s*["']([A-Z_]+)["']""")
ALLOWED = {
    "RAY_AUTH_TOKEN_PATH": "a path read by the file reader (`read_text`), as any file",
    "SWARMLAB_NO_WARM_SERVER": "only whether it is set",
}


def test_no_variable_is_read_around_its_check() -> None:
    """A variable the lab reads is declared in VARIABLES and read by `env_value`, or listed
    here with the reason it needs no check."""
    found = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "_environment.py":
                continue
            for name in READS.findall(path.read_text()):
                if name not in ALLOWED:
                    found.append(f"{path.relative_to(ROOT)}: {name}")
    assert found == []
