"""Tracing overhead: the runtime's programs per second with telemetry on vs off, same run.

    .venv/bin/python benchmarks/tracing.py [--programs 200] [--rounds 9]

Both conditions run the same fan-out tree of sim-model programs on one Ray instance and one
private redis-server. Each round runs both, in alternating order (off first, then on first, ...),
so drift and warm-up on a noisy machine hit both. "Off" records nothing; "on" records every span
and metric to the run directory and exports them over OTLP/HTTP to a local receiver that decodes
nothing (the cost measured is the lab's).

Two figures, each with a 95% bootstrap interval over the rounds:
- the slowdown: 1 - (on / off) of programs per second, paired within each round;
- the extra CPU per program: the whole machine's busy CPU time during a run (/proc/stat: the
  runners, Redis, the driver, the receiver), divided by the programs run, on minus off.
A round's throughput on this 2-core machine varies by a fifth or more from run to run; the
interval says whether a difference is larger than that noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from swarmlab.cluster import RayCluster, RedisServer
from swarmlab.experiments.stats import bootstrap_mean_ci
from swarmlab.observability.telemetry import TelemetryConfig

sys.path.insert(0, str(Path(__file__).parent))
from runtime import fanout_run, programs_per_s


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def busy_cpu_s() -> float:
    """The machine's busy CPU seconds so far, all cores (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def one_run(
    redis_url: str, out: Path, programs: int, telemetry: TelemetryConfig
) -> tuple[float, float]:
    """Programs per second, and the machine's CPU milliseconds per program, of one run."""
    cpu = busy_cpu_s()
    result = fanout_run(redis_url, programs, out, telemetry)
    cpu_ms = (busy_cpu_s() - cpu) * 1000 / len(result.programs)
    rate: float = programs_per_s(result)
    return rate, cpu_ms


def interval(values: list[float]) -> str:
    low, high = bootstrap_mean_ci(values, seed=len(values))
    return f"{statistics.fmean(values):+.1f} [{low:+.1f}, {high:+.1f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    on = TelemetryConfig(otlp_endpoint=f"http://127.0.0.1:{server.server_address[1]}")
    off = TelemetryConfig(enabled=False)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    conditions = [("off", off), ("on", on)]
    with tempfile.TemporaryDirectory(prefix="swarmlab-bench-") as tmp:
        root = Path(tmp)
        with RedisServer(root / "redis") as redis:
            ray = RayCluster().start_local(root / "ray")
            try:
                one_run(redis.url, root / "warm", args.programs, off)  # warm workers and caches
                for i in range(args.rounds):
                    for name, config in conditions if i % 2 == 0 else conditions[::-1]:
                        rate, ms = one_run(redis.url, root / f"{name}{i}", args.programs, config)
                        rates[name].append(rate)
                        cpu[name].append(ms)
                        print(
                            f"round {i + 1} tracing {name:3}: {rate:7.1f} programs/s, "
                            f"{ms:6.2f} ms of CPU a program",
                            flush=True,
                        )
            finally:
                ray.shutdown()
    server.shutdown()
    off_rate, on_rate = statistics.median(rates["off"]), statistics.median(rates["on"])
    slower = [100 * (1 - b / a) for a, b in zip(rates["off"], rates["on"], strict=True)]
    extra = [b - a for a, b in zip(cpu["off"], cpu["on"], strict=True)]
    print(f"median programs/s: tracing off {off_rate:.1f}, on {on_rate:.1f}")
    print(f"slowdown with tracing on, % (mean of rounds, 95% interval): {interval(slower)}")
    print(
        f"CPU a program: off {statistics.median(cpu['off']):.2f} ms, on "
        f"{statistics.median(cpu['on']):.2f} ms (medians); extra with tracing on, ms: "
        f"{interval(extra)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
