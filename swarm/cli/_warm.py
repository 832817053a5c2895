"""`swarmlab up` / `swarmlab down`: keep a local Ray and Redis running between commands."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from swarmlab.core import SpecError
from swarmlab.spec import shown_redis_url

from ._common import path_argument
from ._text import terminal_text
from ._warm_server import LAB_COMMAND, server_info
from ._warm_start import start_server, stop_server


def add_warm_parsers(sub: Any) -> None:
    up = sub.add_parser(
        "up", help="keep a local Ray and Redis running: later runs start in about a second"
    )
    up.add_argument("--num-cpus", type=int, help="CPUs the warm Ray offers (default: all)")
    up.add_argument("--json", action="store_true", help="print what is up as JSON")
    down = sub.add_parser("down", help="stop the Ray and Redis `swarmlab up` started")
    down.add_argument("--json", action="store_true", help="print what was stopped as JSON")
    lab = sub.add_parser(LAB_COMMAND)  # `up` starts it; not listed in the help
    lab.add_argument("home", type=path_argument, help="the warm instance's state dir")


def up_command(args: argparse.Namespace) -> int:
    from swarmlab.cluster import warm_dir, warm_up

    if args.num_cpus is not None and args.num_cpus < 1:
        raise SpecError(f"--num-cpus {args.num_cpus}: must be at least 1")
    began = time.monotonic()
    result = warm_up(args.num_cpus)
    state = result.state
    server = start_server(warm_dir())  # a lab process of the current code, for this instance
    took_s = time.monotonic() - began
    if args.json:
        print(
            json.dumps(
                {
                    "already_up": result.already_up,
                    "stale_cleaned": result.stale_cleaned,
                    "took_s": round(took_s, 3),
                    "server_pid": server.pid,
                    **state.model_dump(),
                }
            )
        )
        return 0
    if result.stale_cleaned:
        print(f"cleaned a stale instance (stopped {len(result.stale_cleaned)} leftover processes)")
    where = (
        f"Ray {state.ray_address}, Redis {shown_redis_url(state.redis_url)}, "
        f"lab process {server.pid}"
    )
    if result.already_up:
        print(terminal_text(f"already up: {where}; nothing to do"))
    else:
        print(terminal_text(f"up in {took_s:.1f} s: {where} (state in {warm_dir()})"))
    return 0


def down_command(args: argparse.Namespace) -> int:
    from swarmlab.cluster import warm_dir, warm_down, warm_instance

    live = warm_instance() is not None
    served = stop_server(warm_dir())
    existed, stopped = warm_down()
    stopped = sorted(set(stopped) | set(served))
    stale = existed and not live
    if args.json:
        print(json.dumps({"was_up": live, "stale": stale, "stopped_pids": stopped}))
    elif not existed:
        print("nothing is up")
    elif stale:
        print(f"cleaned a stale instance (stopped {len(stopped)} leftover processes)")
    else:
        print(f"down: stopped {len(stopped)} processes")
    return 0


def warm_status_line() -> str | None:
    """`status`'s line on the warm instance, when one is up."""
    from swarmlab.cluster import warm_dir, warm_instance

    state = warm_instance()
    if state is None:
        return None
    server = server_info(warm_dir())
    lab = f"lab process {server.pid}" if server else "no lab process (`swarmlab up` starts one)"
    return terminal_text(
        f"warm (swarmlab up): Ray {state.ray_address}, Redis {shown_redis_url(state.redis_url)}, "
        f"{lab}"
    )
