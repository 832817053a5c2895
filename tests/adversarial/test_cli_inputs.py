"""Hostile and careless command-line input: one line and exit 2 for the user's mistake, one line
and exit 1 for a fault of the infrastructure, never a traceback, never a hang."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.cli import one_line_error, swarmlab

BINARY = b"\xff\xfe\x00\x01binary\x89PNG\r\n"


@pytest.fixture
def missing(tmp_path: Path) -> str:
    """A --program that does not exist: a spec that got through stops here, before any run."""
    return str(tmp_path / "not-there.py")


@pytest.mark.parametrize(
    "content", [BINARY, b"name: x\x00\nseed: 1\n", b"caps:\n  programs: \xe9\n"]
)
def test_a_binary_or_non_utf8_spec_file_is_one_line_exit_2(tmp_path: Path, content: bytes) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(content)
    one_line_error(swarmlab("run", str(spec)), 2, str(spec))


@pytest.mark.parametrize("content", [BINARY, b"x = 1\n\xff\n", b"x = 1\x00\n"])
def test_a_binary_or_non_utf8_program_file_is_one_line_exit_2(
    tmp_path: Path, content: bytes
) -> None:
    program = tmp_path / "program.py"
    program.write_bytes(content)
    one_line_error(swarmlab("run", "paperclips", "--program", str(program)), 2, "--program")


@pytest.mark.parametrize(
    "command", [["run", "paperclips", "--program", "p.py"], ["sweep", "masks"]]
)
def test_out_naming_a_file_is_one_line_exit_2_and_the_file_is_untouched(
    tmp_path: Path, command: list[str]
) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    (tmp_path / "p.py").write_text("1")
    done = swarmlab(*command, "--out", str(taken), cwd=tmp_path)
    one_line_error(done, 2, "--out", str(taken))
    assert taken.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "p.py"]


@pytest.mark.parametrize(
    "command",
    [
        ["run", "paperclips"],
        ["kill", "some-run"],
        ["status"],
        ["sweep", "masks"],
    ],
)
def test_an_unknown_redis_url_scheme_is_one_line_exit_2(command: list[str], tmp_path: Path) -> None:
    done = swarmlab(*command, "--redis-url", "foo://127.0.0.1:1/0", cwd=tmp_path)
    one_line_error(done, 2, "--redis-url", "foo://")


@pytest.mark.parametrize(
    "command",
    [
        ["run", "paperclips"],
        ["kill", "some-run"],
        ["status"],
        ["sweep", "masks"],
    ],
)
@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("redis://127.0.0.1:1/0?socket_timeout=1", "'socket_timeout' is not supported"),
        ("redis://127.0.0.1:1/0?ssl_ca_certs=/ca.crt", "needs a rediss:// URL"),
        ("rediss://127.0.0.1:1/0?ssl_cert_reqs=maybe", "ssl_cert_reqs 'maybe'"),
    ],
)
def test_a_redis_url_option_no_client_honours_alike_is_one_line_exit_2(
    command: list[str], url: str, part: str, tmp_path: Path
) -> None:
    done = swarmlab(*command, "--redis-url", url, cwd=tmp_path)
    one_line_error(done, 2, "--redis-url", part)


def test_an_unknown_redis_url_scheme_from_the_environment_is_one_line_exit_2() -> None:
    done = swarmlab("run", "paperclips", SWARMLAB_REDIS_URL="http://127.0.0.1:6379")
    one_line_error(done, 2, "SWARMLAB_REDIS_URL", "http://")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("caps.wall_clock_s=.inf", "caps.wall_clock_s"),
        ("caps.wall_clock_s=.nan", "caps.wall_clock_s"),
        ("program_limits.cpu_s=.inf", "program_limits.cpu_s"),
        ("caps.programs=100000000000000000000000", "caps.programs"),
        ("caps.tokens=1.0e+23", "caps.tokens"),
        ("caps.blackboard_bytes=9007199254740993", "caps.blackboard_bytes"),
        ("program_limits.memory_bytes=1.0e+30", "program_limits.memory_bytes"),
        ("program_limits.max_tokens=10000000000", "program_limits.max_tokens"),
        ("world.machines.wire-bender.clips_per_hour=.inf", "clips_per_hour"),
        ("tripwires=[{name: t, rule: quine, threshold: .nan}]", "threshold"),
    ],
)
def test_infinite_and_unbounded_limits_are_one_line_exit_2(
    override: str, field: str, missing: str
) -> None:
    done = swarmlab("run", "paperclips", "--set", override, "--program", missing)
    one_line_error(done, 2, field)


@pytest.mark.parametrize(
    ("model", "said"),
    [
        ("openai:ftp://x", "base URL"),
        ("openai:", "base URL"),
        ("openai:http://host:99999/v1", "port"),
        ("local:foo", "no argument"),
        ("sim:fast", "no argument"),
    ],
)
def test_a_bad_model_string_is_refused_before_anything_starts(
    model: str, said: str, missing: str
) -> None:
    started = time.monotonic()
    done = swarmlab("run", "paperclips", "--model", model, "--program", missing)
    one_line_error(done, 2, f'--model "{model}"', said)  # the flag given, not a --set
    assert time.monotonic() - started < 20  # no model server, no Ray


def test_a_bad_model_string_in_a_spec_file_is_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("model: 'local:foo'\n")
    one_line_error(swarmlab("run", str(spec)), 2, "model", "local:foo")


@pytest.mark.parametrize("name", ["../../x", "a/b", "*", "a b", ""])
def test_an_experiment_name_that_is_not_a_safe_id_is_exit_2(name: str, missing: str) -> None:
    done = swarmlab("run", "paperclips", "--set", f"name='{name}'", "--program", missing)
    one_line_error(done, 2, f"name = '{name}'", "letters, digits")


@pytest.mark.slow
def test_an_unreachable_ray_address_is_one_line_exit_1_within_seconds(
    tmp_path: Path, redis_url: str, closed_port: int
) -> None:
    program = tmp_path / "p.py"
    program.write_text("1")
    started = time.monotonic()
    done = swarmlab(
        "run",
        "paperclips",
        "--program",
        str(program),
        "--out",
        str(tmp_path / "run"),
        "--redis-url",
        redis_url,
        "--ray-address",
        f"127.0.0.1:{closed_port}",
        "--quiet",
        timeout=90,
    )
    one_line_error(done, 1, "Ray", str(closed_port))
    assert time.monotonic() - started < 30
    assert "\x1b" not in done.stderr


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    """`swarmlab list | head`: the reader leaves early; no traceback about it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmlab.cli", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
    assert err == ""
    assert proc.returncode != 0  # like any writer whose reader left (SIGPIPE: 141)
