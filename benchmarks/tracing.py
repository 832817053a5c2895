"""Tracing overhead: the runtime's programs per second with telemetry on vs off, same run.

    .venv/bin/python benchmarks/tracing.py [--programs 200] [--rounds 3]

Both conditions run the same fan-out tree of sim-model programs on one Ray instance and one
private redis-server, alternating (off, on, off, on, ...) so drift on a noisy machine hits both.
"Off" records nothing; "on" records every span and metric to the run directory and exports
them over OTLP/HTTP to a local receiver that decodes nothing (the cost measured is the lab's).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from swarmlab.cluster import RayCluster, RedisServer
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


def one_run(redis_url: str, out: Path, programs: int, telemetry: TelemetryConfig) -> float:
    rate: float = programs_per_s(fanout_run(redis_url, programs, out, telemetry))
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    on = TelemetryConfig(otlp_endpoint=f"http://127.0.0.1:{server.server_address[1]}")
    off = TelemetryConfig(enabled=False)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="swarmlab-bench-") as tmp:
        root = Path(tmp)
        with RedisServer(root / "redis") as redis:
            ray = RayCluster().start_local(root / "ray")
            try:
                one_run(redis.url, root / "warm", args.programs, off)  # warm workers and caches
                for i in range(args.rounds):
                    for name, config in (("off", off), ("on", on)):
                        rate = one_run(redis.url, root / f"{name}{i}", args.programs, config)
                        rates[name].append(rate)
                        print(f"round {i + 1} tracing {name:3}: {rate:7.1f} programs/s", flush=True)
            finally:
                ray.shutdown()
    server.shutdown()
    off_rate, on_rate = statistics.median(rates["off"]), statistics.median(rates["on"])
    print(
        f"median programs/s: tracing off {off_rate:.1f}, on {on_rate:.1f}; "
        f"on/off = {on_rate / off_rate:.3f} ({(1 - on_rate / off_rate) * 100:+.1f}% slower)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
