"""`swarmlab submit`: what it sends, how it fails, and whole runs on a real local Ray head whose
environment names a model server (a scripted OpenAI-compatible one), as a cluster's does."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers.cli import one_line_error, swarmlab
from helpers.ray_head import CLUSTER_MODEL_NAME, RayHead

from swarmlab import load_spec
from swarmlab.cli._submit import (
    RUN_DIR_LINE,
    LogEcho,
    jaeger_search_url,
    job_entrypoint,
    parse_summary,
    spec_document,
)
from swarmlab.cluster import ClusterError, JobServer, free_port

# --- failures, before anything reaches a cluster ---------------------------------------------


def test_a_bad_spec_is_refused_before_submitting(closed_port: int) -> None:
    address = f"http://127.0.0.1:{closed_port}"
    done = swarmlab("submit", "paperclips", "--set", "caps.programs=-5", "--address", address)
    one_line_error(done, 2, "caps.programs", "-5")
    one_line_error(swarmlab("submit", "nope", "--address", address), 2, "no experiment named")
    done = swarmlab("submit", "paperclips", "--run-id", "a b/c", "--address", address)
    one_line_error(done, 2, "--run-id")
    done = swarmlab("submit", "paperclips", "--redis-url", "localhost", "--address", address)
    one_line_error(done, 2, "--redis-url")


def test_submit_needs_a_cluster_address() -> None:
    one_line_error(swarmlab("submit", "paperclips"), 2, "--address", "RAY_ADDRESS")


def test_an_unreachable_job_server_exits_1_with_one_line(closed_port: int) -> None:
    done = swarmlab("submit", "paperclips", "--address", f"127.0.0.1:{closed_port}")
    one_line_error(done, 1, "no Ray job server", str(closed_port))


# --- what travels with the job ---------------------------------------------------------------


def test_the_spec_travels_whole(tmp_path: Path) -> None:
    spec = load_spec("paperclips", ["caps.programs=15", "seed=7", "sim.quine=0.5"])
    path = tmp_path / "experiment.yaml"
    path.write_text(spec_document(spec))
    assert load_spec(str(path)) == spec


@pytest.mark.parametrize(("runs_dir", "model"), [(None, None), ("runs here", "sim")])
def test_the_job_entrypoint_runs_swarmlab_run_where_the_cluster_keeps_runs(
    tmp_path: Path, runs_dir: str | None, model: str | None
) -> None:
    fake = tmp_path / "bin" / "swarmlab"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\nexec python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\"\n"
    )
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
    if runs_dir:
        env["SWARMLAB_RUNS_DIR"] = str(tmp_path / runs_dir)
    done = subprocess.run(
        ["/bin/sh", "-c", job_entrypoint("exp-1.a_b", model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = str(tmp_path / runs_dir / "exp-1.a_b") if runs_dir else "/tmp/swarmlab-runs/exp-1.a_b"
    assert json.loads(done.stdout) == [
        "run",
        "experiment.yaml",
        "--run-id",
        "exp-1.a_b",
        "--ray-address",
        "auto",
        "--json",
        "--report",
        *(["--model", model] if model else []),
        "--out",
        out,
    ]
    where = RUN_DIR_LINE.search(done.stderr)
    assert where is not None
    assert where["path"] == out
    assert where["host"] == os.uname().nodename


def test_the_jaeger_link_searches_the_runs_trace_by_its_tag() -> None:
    url = jaeger_search_url(
        "http://jaeger:16686/", "paperclips-1", 1_700_000_000.0, 1_700_000_600.0
    )
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("jaeger:16686", "/search")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["service"] == "swarmlab"
    assert json.loads(query["tags"]) == {"swarmlab.run_id": "paperclips-1"}
    assert query["lookback"] == "custom"
    assert int(query["start"]) < 1_700_000_000 * 10**6 < 1_700_000_600 * 10**6 == int(query["end"])


def test_the_log_is_streamed_and_the_summary_read_from_its_end() -> None:
    summary = {"run_id": "r1", "status": "completed", "caps": {"programs": {"used": 3}}}
    log = (
        "swarmlab: run directory /data/runs/r1 on head-0\n"
        "swarmlab: connecting to Ray\n"
        "[   5.0s] running=2 done=1\n"
        "{\n" + json.dumps(summary, indent=1) + "\n"  # a stray brace line is not the summary
    )
    assert parse_summary(log) == summary
    assert parse_summary("swarmlab: redis unreachable\n") is None
    out = StringIO()
    echo = LogEcho(out)
    echo.feed(log[:30])  # a partial line waits for its end
    assert out.getvalue() == ""
    echo.feed(log)
    echo.feed(log, final=True)
    assert out.getvalue().splitlines() == [
        "swarmlab: run directory /data/runs/r1 on head-0",
        "swarmlab: connecting to Ray",
        "[   5.0s] running=2 done=1",
    ]


# --- a whole run as a Ray job -----------------------------------------------------------------


@pytest.mark.slow
def test_submit_runs_the_experiment_on_the_clusters_model_and_prints_its_summary(
    ray_head: RayHead, redis_url: str, tmp_path: Path
) -> None:
    run_id = f"submit-{secrets.token_hex(3)}"
    done = swarmlab(
        "submit",
        "paperclips",
        "--set",
        "caps.programs=15",
        "--run-id",
        run_id,
        "--address",
        ray_head.address,
        "--redis-url",
        redis_url,
        "--json",
        "--jaeger-url",
        "http://jaeger.example:16686",
        "--no-fetch",
        timeout=150,
        cwd=tmp_path,
        RAY_AUTH_TOKEN=ray_head.token,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["fetched"] is None  # --no-fetch: the run directory stays on the cluster
    assert not (tmp_path / "runs").exists()
    assert (result["run_id"], result["job_status"]) == (run_id, "SUCCEEDED")
    summary = result["summary"]
    assert summary["run_id"] == run_id
    assert summary["status"] == "completed"
    assert summary["caps"]["programs"]["limit"] == 15
    for cap, usage in summary["caps"].items():
        assert usage["used"] <= usage["limit"], cap
    assert summary["programs"]["total"] >= 1
    # The built-in experiment says `model: sim`; the cluster names a model, so the run asked it.
    cluster_url = f"openai:{ray_head.model.url}"
    assert summary["model"]["backend"] == "openai"
    assert summary["spec"]["model"] == cluster_url
    assert summary["spec"]["model_name"] == CLUSTER_MODEL_NAME
    asked = ray_head.model.chat_posts()
    assert asked, "the cluster's model server was never asked"
    assert {post["body"]["model"] for post in asked} == {CLUSTER_MODEL_NAME}
    assert result["model"] == {
        "model": cluster_url,
        "backend": "openai",
        "name": "fake-model",  # as the server answered (helpers.fake_endpoint), unprefixed
        "chosen_by": "the cluster's SWARMLAB_MODEL_URL",
    }
    assert "the cluster's own (its SWARMLAB_MODEL_URL)" in done.stderr  # said at submission
    assert f"model {cluster_url} ({CLUSTER_MODEL_NAME}), from the cluster's" in done.stderr
    # The run directory is where the cluster keeps runs, written by the job.
    assert result["run_dir"] == str(ray_head.runs / run_id)
    on_disk = json.loads((ray_head.runs / run_id / "summary.json").read_text())
    assert on_disk["run_id"] == run_id
    assert on_disk["status"] == "completed"
    assert on_disk["model"]["backend"] == "openai"
    assert on_disk["spec"]["model"] == cluster_url
    # Progress was streamed from the job's log; the trace link names the run.
    assert f"run directory {ray_head.runs / run_id}" in done.stderr
    assert result["trace_url"].startswith("http://jaeger.example:16686/search?")
    assert run_id in result["trace_url"]
    # The same run id again is refused by the cluster's job server, before anything runs.
    again = swarmlab(
        "submit",
        "paperclips",
        "--run-id",
        run_id,
        "--address",
        ray_head.address,
        RAY_AUTH_TOKEN=ray_head.token,
    )
    one_line_error(again, 2, "already has a job")
    # Without the token, the job server refuses.
    one_line_error(swarmlab("submit", "paperclips", "--address", ray_head.address), 1, "job server")


@pytest.mark.slow
def test_an_explicit_model_wins_over_the_clusters(ray_head: RayHead, redis_url: str) -> None:
    asked_before = len(ray_head.model.chat_posts())
    done = swarmlab(
        "submit",
        "paperclips",
        "--model",
        "sim",
        "--set",
        "caps.programs=10",
        "--address",
        ray_head.address,
        "--redis-url",
        redis_url,
        "--no-fetch",
        timeout=150,
        RAY_AUTH_TOKEN=ray_head.token,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    assert rows["model"].startswith("sim")
    assert rows["model"].endswith("from --model")
    assert rows["fetch"].startswith("swarmlab fetch ")  # how to bring it home later
    assert len(ray_head.model.chat_posts()) == asked_before
    # A run that fails on the cluster exits 1; after the streamed log, one line says why.
    failed = swarmlab(
        "submit",
        "paperclips",
        "--model",
        f"openai:http://127.0.0.1:{free_port()}/v1",
        "--address",
        ray_head.address,
        "--redis-url",
        redis_url,
        timeout=150,
        RAY_AUTH_TOKEN=ray_head.token,
    )
    assert failed.returncode == 1, failed.stderr[-3000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("swarmlab: run ")
    assert "FAILED" in last
    assert "127.0.0.1" in last
    assert failed.stdout == ""


class _StartingServer:
    """A job client whose cluster is still starting: "no available agent" a few times."""

    def __init__(self, refusals: int, error: str) -> None:
        self.refusals, self.error, self.calls = refusals, error, 0

    def submit_job(self, **_: object) -> str:
        self.calls += 1
        if self.calls <= self.refusals:
            raise RuntimeError(self.error)
        return "job-1"


def _server_with(client: _StartingServer, monkeypatch: pytest.MonkeyPatch) -> JobServer:
    monkeypatch.setattr("swarmlab.cluster._jobs.RETRY_EVERY_S", 0.01)
    server = JobServer.__new__(JobServer)
    server.address, server._client = "http://head:8265", client
    return server


def test_a_cluster_still_starting_gets_the_job_once_its_agent_is_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    not_ready = "Request failed with status code 500: No available agent to submit job, please try"
    client = _StartingServer(3, not_ready)
    server = _server_with(client, monkeypatch)
    assert server.submit("true", submission_id="j", runtime_env={}, metadata={}) == "job-1"
    assert client.calls == 4
    refused = _StartingServer(1, "Request failed with status code 401: unauthorized")
    with pytest.raises(ClusterError, match=r"refused the job: .*401"):
        _server_with(refused, monkeypatch).submit(
            "true", submission_id="j", runtime_env={}, metadata={}
        )
    assert refused.calls == 1  # a real refusal is not retried
