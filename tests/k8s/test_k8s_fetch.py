"""Results come home: a run submitted to a real local Ray head (its jobs API, token auth) writes
its directory and report.html where the cluster keeps runs, and `submit` (at the end) or
`swarmlab fetch` (any time later) brings that directory to this machine."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
from helpers.cli import one_line_error, swarmlab
from helpers.ray_head import RayHead

from swarmlab.cluster import JobServer


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _submit(ray_head: RayHead, redis_url: str, cwd: Path, *extra: str) -> dict[str, object]:
    run_id = f"home-{secrets.token_hex(3)}"
    done = swarmlab(
        "submit",
        "paperclips",
        "--model",
        "sim",
        "--set",
        "caps.programs=12",
        "--run-id",
        run_id,
        "--address",
        ray_head.address,
        "--redis-url",
        redis_url,
        "--json",
        *extra,
        timeout=180,
        cwd=cwd,
        RAY_AUTH_TOKEN=ray_head.token,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout)
    assert result["run_id"] == run_id
    return result


@pytest.mark.slow
def test_a_submitted_run_comes_home_with_its_report(
    ray_head: RayHead, redis_url: str, tmp_path: Path
) -> None:
    result = _submit(ray_head, redis_url, tmp_path)
    run_id = str(result["run_id"])
    on_cluster = ray_head.runs / run_id
    # The job wrote the run directory and its report where the cluster keeps runs ...
    assert (on_cluster / "report.html").is_file()
    assert run_id in (on_cluster / "report.html").read_text()
    # ... and `submit` brought it home, by default to runs/<run-id>.
    home = tmp_path / "runs" / run_id
    assert result["fetched"] == str(home)
    assert _files(home) == _files(on_cluster)
    assert json.loads((home / "summary.json").read_text())["status"] == "completed"
    # `fetch` brings it again, anywhere, any time later.
    done = swarmlab(
        "fetch",
        run_id,
        "--address",
        ray_head.address,
        "--out",
        str(tmp_path / "again"),
        RAY_AUTH_TOKEN=ray_head.token,
    )
    assert done.returncode == 0, done.stderr
    assert _files(tmp_path / "again") == _files(on_cluster)
    assert f"report: {tmp_path / 'again' / 'report.html'}" in done.stdout
    # A run the cluster does not have: one line, exit 1, nothing written.
    missing = swarmlab(
        "fetch",
        "no-such-run",
        "--address",
        ray_head.address,
        "--out",
        str(tmp_path / "none"),
        RAY_AUTH_TOKEN=ray_head.token,
    )
    one_line_error(missing, 1, "no run no-such-run")
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_no_wait_says_where_the_run_directory_is(
    ray_head: RayHead, redis_url: str, tmp_path: Path
) -> None:
    result = _submit(ray_head, redis_url, tmp_path, "--no-wait")
    run_id = str(result["run_id"])
    assert result["job_status"] == "SUBMITTED"
    assert result["run_dir"] == str(ray_head.runs / run_id)  # the real place, not a variable
    assert result["run_host"] == os.uname().nodename
    server = JobServer(ray_head.address, token=ray_head.token)
    assert server.wait(str(result["job_id"]), 150) == "SUCCEEDED"
    assert not (tmp_path / "runs").exists()  # --no-wait: nothing fetched


@pytest.mark.slow
def test_fetch_leaves_what_the_run_directory_links_to_on_the_cluster(
    ray_head: RayHead, tmp_path: Path
) -> None:
    """A run directory on the cluster holding a link (planted, or left by a tool) sends the
    link's name nowhere: only regular files travel."""
    secret = ray_head.runs.parent / "secret.txt"
    secret.write_text("the head's own file")
    planted = ray_head.runs / "planted"
    planted.mkdir(parents=True)
    (planted / "summary.json").write_text("{}")
    (planted / "link").symlink_to(secret)
    done = swarmlab(
        "fetch",
        "planted",
        "--address",
        ray_head.address,
        "--out",
        str(tmp_path / "planted"),
        RAY_AUTH_TOKEN=ray_head.token,
    )
    assert done.returncode == 0, done.stderr
    assert _files(tmp_path / "planted") == {"summary.json": b"{}"}
    assert not (tmp_path / "planted" / "link").exists()
