"""`swarmlab status`: the live runs, each with its caps counted as its own progress line and
summary.json count them (what the run's Redis holds is read back: numbers are parsed, never
trusted)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

from swarmlab.core import (
    MAX_TEXT_BYTES,
    ClusterError,
    CoordinatorUnavailable,
    SpecError,
    parse_json,
    parse_number,
)

from ._common import redis_url_argument
from ._text import terminal_text
from ._warm import warm_status_line

STATUS_WAIT_S = 5.0
"""How long a live run's Redis may take to answer before `status` leaves the run out."""
NOT_CAPS = ("live", "computing_peak")
"""Counts the coordinator keeps beside the caps' usage."""


def status_command(args: argparse.Namespace) -> int:
    from swarmlab.runtime import live_runs, registered_runs, registry_dir
    from swarmlab.spec import check_run_id, is_redis_url, is_run_id

    if args.run_id is not None:
        check_run_id(args.run_id, "run id")
    extra = redis_url_argument(args.redis_url)
    # Only run ids and Redis URLs: a registry file or a shared Redis may hold anything.
    urls = {
        str(r["run_id"]): str(r["redis_url"])
        for r in registered_runs()
        if is_run_id(r.get("run_id")) and is_redis_url(r.get("redis_url"))
    }

    async def collect() -> list[dict[str, Any]]:
        if extra:
            for run_id in await live_runs(extra):
                if is_run_id(run_id):
                    urls.setdefault(run_id, extra)

        wanted = [(r, u) for r, u in sorted(urls.items()) if not args.run_id or r == args.run_id]
        asked = bool(args.run_id)
        found = await asyncio.gather(*(_row(r, u, asked, unreachable) for r, u in wanted))
        return [r for r in found if r is not None]

    unreachable: list[str] = []
    rows = asyncio.run(collect())
    for line in unreachable:  # one run's Redis gone or stuck hides none of the others
        print(
            terminal_text(
                f"swarmlab: {line} (left out; a run that is over leaves its entry "
                f"in {registry_dir()} until its driver's process ends)"
            ),
            file=sys.stderr,
        )
    if args.run_id and not rows:
        raise SpecError(f"no live run '{args.run_id}'")
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    _print_status(rows)
    return 0


async def _row(run_id: str, url: str, asked: bool, unreachable: list[str]) -> dict[str, Any] | None:
    """One live run's row, read within `STATUS_WAIT_S`. A run whose Redis is gone, stuck or
    holds what cannot be read is a line in `unreachable` (the others are still shown); asked
    for by its id (`asked`), its problem is the command's answer."""
    from swarmlab.runtime import Coordinator
    from swarmlab.spec import shown_redis_url

    coord = Coordinator(url, run_id)
    try:
        meta, usage, states = await asyncio.wait_for(
            asyncio.gather(coord.meta(), coord.usage(), coord.states()), STATUS_WAIT_S
        )
    except TimeoutError:
        problem = ClusterError(f"run {run_id}: its Redis {shown_redis_url(url)} does not answer")
        if asked:
            raise problem from None
        unreachable.append(str(problem))
        return None
    except (CoordinatorUnavailable, SpecError) as exc:
        if asked:
            raise
        unreachable.append(f"run {run_id}: {str(exc)[:300]}")
        return None
    finally:
        with contextlib.suppress(Exception):
            await coord.close()
    return status_row(run_id, meta, usage, states, time.time())


def status_row(
    run_id: str,
    meta: dict[str, str],
    usage: dict[str, dict[str, float]],
    states: dict[str, int],
    now: float,
) -> dict[str, Any]:
    """One run's line: its caps as summary.json counts them (`concurrent` under `queue`
    admission: the programs computing now; `wall_clock_s`: the seconds since the root program
    started), the live programs, those computing now and the most that ever computed at once."""
    caps = {cap: dict(value) for cap, value in usage.items() if cap not in NOT_CAPS}
    if "concurrent" in caps and _admission(meta) == "queue":
        caps["concurrent"]["used"] = float(states.get("computing", 0))
    if "wall_clock_s" in caps:
        caps["wall_clock_s"]["used"] = _tree_s(meta, caps["wall_clock_s"]["limit"], now)
    return {
        "run_id": run_id,
        "status": meta.get("status", "?"),
        "live": int(usage.get("live", {}).get("used", 0)),
        "computing": int(states.get("computing", 0)),
        "computing_peak": int(usage.get("computing_peak", {}).get("used", 0)),
        "caps": caps,
    }


def _admission(meta: dict[str, str]) -> str:
    text = meta.get("spec", "")
    if len(text) > MAX_TEXT_BYTES:  # a shared Redis may hold anything there
        return "?"
    try:
        spec = parse_json(text, "the run's spec")
    except SpecError:
        return "?"
    found = spec.get("admission") if isinstance(spec, dict) else None
    return found if isinstance(found, str) else "?"


def _tree_s(meta: dict[str, str], limit: float, now: float) -> float:
    """Seconds since the root program started: the run's deadline less its wall clock (0 before
    the tree starts)."""
    if "deadline_ms" not in meta:
        return 0.0
    deadline = parse_number(meta["deadline_ms"], "the run's deadline_ms") / 1000
    return round(max(0.0, min(now - (deadline - limit), limit * 10)), 1)


def _print_status(rows: list[dict[str, Any]]) -> None:
    if (warm := warm_status_line()) is not None:
        print(warm)
    if not rows:
        print("no live runs")
    for row in rows:
        parts = [
            f"{c}={_shown(v['used'])}/{_shown(v['limit'])}"
            + (f" (denied {int(v['denied'])})" if v["denied"] else "")
            for c, v in row["caps"].items()
        ]
        print(
            terminal_text(
                f"{row['run_id']}  {row['status']}  live={row['live']}  "
                f"computing={row['computing']} (peak {row['computing_peak']})  " + " ".join(parts)
            )
        )


def _shown(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))
