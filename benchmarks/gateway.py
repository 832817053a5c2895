"""The swarm's model-call path against a direct HTTP client, on one vLLM server, in one run.

    python benchmarks/gateway.py [--url http://host:8000/v1] [--concurrency 16] [--requests 48]

Without `--url` it starts the bundled model on a vLLM CPU server (`ensure_local_server`) and
stops it at the end. Both paths send the same kind of request (same persona, prompts of the same
length, exactly max_tokens generated), at the same concurrency, in alternating
rounds so drift of the machine hits both alike; each round uses fresh prompts so neither path
rides the other's prefix cache (the shared persona is cached for both):

- direct: one `httpx.AsyncClient` posting to `/chat/completions`;
- swarm: `charge_model_call` as the runtime makes it: the coordinator's reserve on a private
  Redis, `OpenAIBackend.generate` with a W3C traceparent header, then the settle.

Goal: the swarm path adds at most 2% to the mean latency and keeps at least 90% of the direct
throughput (completion tokens per second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from swarmlab.cluster import RedisServer
from swarmlab.models import Completion, CompletionRequest, Message
from swarmlab.models._openai import OpenAIBackend, request_headers
from swarmlab.runtime import Coordinator
from swarmlab.runtime._model_calls import charge_model_call
from swarmlab.runtime._scheduler import Scheduler
from swarmlab.spec import Caps

PERSONA = "You are a resourceful planner. Answer briefly and concretely."
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
# Every request generates exactly max_tokens, so both paths do the same work.
EXTRA = {"ignore_eos": True}


class TimedBackend(OpenAIBackend):
    """The runtime's backend, noting how long each generate took (the rest is the coordinator)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.generate_s: list[float] = []

    async def generate(self, request: CompletionRequest) -> Completion:
        start = time.perf_counter()
        try:
            return await super().generate(request)
        finally:
            self.generate_s.append(time.perf_counter() - start)


def request(path: str, round_no: int, i: int, max_tokens: int) -> CompletionRequest:
    text = f"[{path[0]}{round_no:02d}.{i:03d}] Give one idea to get lots of paperclips by tomorrow."
    return CompletionRequest(
        messages=(Message(role="system", content=PERSONA), Message(role="user", content=text)),
        max_tokens=max_tokens,
        temperature=0.0,
        seed=round_no * 1000 + i,
    )


async def direct_round(
    client: httpx.AsyncClient, url: str, model: str, reqs: list[CompletionRequest], limit: int
) -> tuple[list[float], int, float]:
    gate = asyncio.Semaphore(limit)

    async def one(req: CompletionRequest) -> tuple[float, int]:
        body = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in req.messages],
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "seed": req.seed,
            **EXTRA,
        }
        async with gate:
            start = time.perf_counter()
            reply = await client.post(f"{url}/chat/completions", json=body)
            reply.raise_for_status()
            tokens = int(reply.json()["usage"]["completion_tokens"])
            return time.perf_counter() - start, tokens

    start = time.perf_counter()
    results = await asyncio.gather(*(one(r) for r in reqs))
    return [r[0] for r in results], sum(r[1] for r in results), time.perf_counter() - start


async def swarm_round(
    coord: Coordinator, backend: TimedBackend, reqs: list[CompletionRequest], limit: int
) -> tuple[list[float], int, float]:
    gate = asyncio.Semaphore(limit)  # the workload's concurrency, as many programs at once
    sched = Scheduler(coord)

    async def one(req: CompletionRequest) -> tuple[float, int]:
        async with gate:
            start = time.perf_counter()
            token = request_headers.set({"traceparent": TRACEPARENT})
            try:
                completion: Completion = await charge_model_call(sched, backend, req)
            finally:
                request_headers.reset(token)
            return time.perf_counter() - start, completion.usage.completion_tokens

    start = time.perf_counter()
    results = await asyncio.gather(*(one(r) for r in reqs))
    return [r[0] for r in results], sum(r[1] for r in results), time.perf_counter() - start


def summary(latencies: list[float], tokens: int, wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "latency_mean_ms": statistics.fmean(latencies) * 1000,
        "latency_p50_ms": statistics.median(latencies) * 1000,
        "latency_p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
        "completion_tokens": tokens,
        "tokens_per_s": tokens / wall,
    }


def group_rss_mib(pid: int | None) -> float | None:
    """Resident memory of a process group (the vLLM server and its engine), in MiB."""
    if pid is None:
        return None
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


async def bench(
    url: str, model: str | None, args: argparse.Namespace, redis_url: str, pid: int | None
) -> dict[str, Any]:
    coord = Coordinator(redis_url, "gateway-bench")
    big = 10**9
    caps = Caps(model_calls=big, tokens=big, wall_clock_s=24 * 3600)
    await coord.init_run(caps, {"status": "running"})
    backend = TimedBackend(url, model, extra_body=EXTRA)
    model = await backend.resolve_model_name()
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=64)
    client = httpx.AsyncClient(timeout=600, limits=limits, trust_env=False)
    runs: dict[str, list[tuple[list[float], int, float]]] = {"direct": [], "swarm": []}
    rss: float | None = None
    try:
        warm = [request("warm", 0, i, args.max_tokens) for i in range(args.concurrency)]
        await direct_round(client, url, model, warm, args.concurrency)
        for round_no in range(1, args.rounds + 1):
            order = ("direct", "swarm") if round_no % 2 else ("swarm", "direct")
            for path in order:
                reqs = [request(path, round_no, i, args.max_tokens) for i in range(args.requests)]
                if path == "direct":
                    runs[path].append(
                        await direct_round(client, url, model, reqs, args.concurrency)
                    )
                else:
                    runs[path].append(await swarm_round(coord, backend, reqs, args.concurrency))
            rss = max(rss or 0.0, group_rss_mib(pid) or 0.0) or None
    finally:
        await client.aclose()
        await backend.aclose()
        await coord.delete_run()
        await coord.close()
    out: dict[str, Any] = {"model": model, "url": url, "concurrency": args.concurrency}
    for path, rounds in runs.items():
        latencies = [x for r in rounds for x in r[0]]
        out[path] = summary(latencies, sum(r[1] for r in rounds), sum(r[2] for r in rounds))
    swarm_latencies = [x for r in runs["swarm"] for x in r[0]]
    out["swarm"]["coordinator_ms_per_call"] = (
        (sum(swarm_latencies) - sum(backend.generate_s)) / len(swarm_latencies) * 1000
    )
    direct, swarm = out["direct"], out["swarm"]
    out["ratios"] = {
        "added_latency_mean": swarm["latency_mean_ms"] / direct["latency_mean_ms"] - 1,
        "added_latency_p50": swarm["latency_p50_ms"] / direct["latency_p50_ms"] - 1,
        "throughput_vs_direct": swarm["tokens_per_s"] / direct["tokens_per_s"],
    }
    if rss is not None:
        out["server_rss_mib"] = rss
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an OpenAI-compatible endpoint (default: start the local)")
    parser.add_argument("--model-name", help="model to ask for (default: what /models lists)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=48, help="requests per round and path")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    local = None
    if not args.url:
        from swarmlab.models._local import ensure_local_server

        started = time.perf_counter()
        local = ensure_local_server(reuse=False, max_num_seqs=max(16, args.concurrency))
        print(f"local vLLM server up in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    url = args.url or local.url  # type: ignore[union-attr]
    try:
        single = asyncio.run(single_stream(url, args.model_name, args.max_tokens * 2))
        with (
            tempfile.TemporaryDirectory(prefix="swarmlab-gateway-") as tmp,
            RedisServer(Path(tmp) / "redis") as redis,
        ):
            pid = local.server.pid if local is not None else None
            report = asyncio.run(bench(url, args.model_name, args, redis.url, pid))
        report["single_request_tokens_per_s"] = single
    finally:
        if local is not None:
            local.stop()
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"model {report['model']} at {url}, concurrency {args.concurrency}")
    print(f"one request alone      {single:7.1f} completion tokens/s")
    for path in ("direct", "swarm"):
        s = report[path]
        print(
            f"{path:7} {s['requests']:4d} requests: mean {s['latency_mean_ms']:7.1f} ms,"
            f" p50 {s['latency_p50_ms']:7.1f} ms, p95 {s['latency_p95_ms']:7.1f} ms,"
            f" {s['tokens_per_s']:6.1f} completion tokens/s"
        )
    print(
        f"swarm   outside generate (reserve + settle on Redis, waiting for a core):"
        f" {report['swarm']['coordinator_ms_per_call']:.2f} ms a call"
    )
    r = report["ratios"]
    print(
        f"ratios  swarm adds {r['added_latency_mean']:+.2%} mean latency"
        f" ({r['added_latency_p50']:+.2%} p50), keeps {r['throughput_vs_direct']:.1%} of direct"
        " throughput (goal: at most +2%, at least 90%)"
    )
    if "server_rss_mib" in report:
        print(f"server  {report['server_rss_mib']:.0f} MiB resident under load (all processes)")
    return 0


async def single_stream(url: str, model: str | None, max_tokens: int) -> float:
    """Completion tokens per second of one request with the server otherwise idle."""
    backend = OpenAIBackend(url, model, extra_body=EXTRA)
    try:
        req = request("single", 0, 0, max_tokens)
        await backend.generate(req)  # warm
        rates = []
        for i in range(3):
            start = time.perf_counter()
            done = await backend.generate(request("single", 0, i + 1, max_tokens))
            rates.append(done.usage.completion_tokens / (time.perf_counter() - start))
        return statistics.median(rates)
    finally:
        await backend.aclose()


if __name__ == "__main__":
    sys.exit(main())
