"""A run id names a folder and every Redis key of a run: one that is a pattern (`*`) or a path
(`../../x`) is refused by every command, and can never reach another run's keys or write
outside the runs folder."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers.cli import one_line_error, swarmlab

from swarmlab import Caps
from swarmlab.runtime import Coordinator

HOSTILE_IDS = ["*", "../../x", "[a-z]*", "a/b", "-rf", "a b", "run:1", "x" * 129, "a\x1b[2J"]


def _keys(url: str, run_id: str) -> set[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return set(client.scan_iter(match=f"swarmlab:run:{run_id}:*"))
    finally:
        client.close()


@pytest.fixture
def other_run(redis_url: str) -> Iterator[str]:
    """Another run on the same Redis, alive while the test goes."""
    run_id = "other-" + secrets.token_hex(4)

    async def start() -> None:
        coord = Coordinator(redis_url, run_id)
        try:
            await coord.init_run(Caps(), {"status": "running"})
            await coord.client.hset(coord.prefix + "bb", "note", '"keep me"')
        finally:
            await coord.close()

    async def end() -> None:
        coord = Coordinator(redis_url, run_id)
        try:
            await coord.delete_run()
        finally:
            await coord.close()

    asyncio.run(start())
    assert _keys(redis_url, run_id)
    yield run_id
    asyncio.run(end())


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "p.py"
    path.write_text("1")
    return path


@pytest.mark.parametrize("run_id", HOSTILE_IDS)
def test_run_refuses_a_run_id_that_is_not_a_safe_name(
    run_id: str, tmp_path: Path, redis_url: str, other_run: str, program: Path
) -> None:
    before = _keys(redis_url, other_run)
    workdir = tmp_path / "a" / "b"
    workdir.mkdir(parents=True)
    done = swarmlab(
        "run",
        "paperclips",
        "--program",
        str(program),
        "--redis-url",
        redis_url,
        "--run-id",
        run_id,
        "--quiet",
        "--set",
        "caps.wall_clock_s=20",
        cwd=workdir,
    )
    one_line_error(done, 2, "--run-id")
    assert "\x1b" not in done.stderr
    assert _keys(redis_url, other_run) == before  # the other run keeps every key
    assert sorted(os.listdir(tmp_path)) == ["a", "p.py"]  # nothing written beside or above
    assert os.listdir(workdir) == []


@pytest.mark.parametrize("run_id", ["*", "../../x"])
@pytest.mark.parametrize("command", ["kill", "status"])
def test_kill_and_status_refuse_a_run_id_that_is_not_a_safe_name(
    command: str, run_id: str, redis_url: str, other_run: str
) -> None:
    before = _keys(redis_url, other_run)
    done = swarmlab(command, run_id, "--redis-url", redis_url)
    one_line_error(done, 2, f"run id {run_id!r}")
    assert _keys(redis_url, other_run) == before


@pytest.mark.parametrize("run_id", ["*", "../../x"])
def test_fetch_and_pack_refuse_a_run_id_that_is_not_a_safe_name(
    run_id: str, closed_port: int, tmp_path: Path
) -> None:
    """Each names the run id as it was given: `fetch`'s argument, `pack-run`'s option."""
    address = f"http://127.0.0.1:{closed_port}"
    one_line_error(swarmlab("fetch", run_id, "--address", address), 2, f"run id {run_id!r}")
    packed = swarmlab("pack-run", str(tmp_path), "--run-id", run_id)
    one_line_error(packed, 2, f"--run-id {run_id!r}")


@pytest.mark.parametrize("run_id", ["*", "../../x"])
def test_submit_refuses_a_run_id_that_is_not_a_safe_name(run_id: str, closed_port: int) -> None:
    done = swarmlab(
        "submit", "paperclips", "--run-id", run_id, "--address", f"http://127.0.0.1:{closed_port}"
    )
    one_line_error(done, 2, "--run-id")


def test_an_experiment_name_cannot_climb_out_of_the_runs_folder(
    tmp_path: Path, program: Path
) -> None:
    """The default run id starts with the spec's name: it is held to the same rule."""
    workdir = tmp_path / "a" / "b"
    workdir.mkdir(parents=True)
    done = swarmlab(
        "run", "paperclips", "--program", str(program), "--set", "name=../../x", cwd=workdir
    )
    one_line_error(done, 2, "name", "../../x")
    assert sorted(os.listdir(tmp_path)) == ["a", "p.py"]


def test_cleaning_up_a_run_never_reaches_another_runs_keys(redis_url: str, other_run: str) -> None:
    """Clean-up scans the run's own prefix taken literally: even a run id that is a pattern
    (which every command refuses) deletes nothing of another run."""
    before = _keys(redis_url, other_run)

    async def clean(run_id: str) -> None:
        coord = Coordinator(redis_url, run_id)
        try:
            await coord.delete_run()
        finally:
            await coord.close()

    for pattern in ("*", "other-*", "[o]ther-*", "other-????????"):
        asyncio.run(clean(pattern))
    assert _keys(redis_url, other_run) == before
