"""Ten thousand live programs on one node: time to reach them, memory, and time to kill them.

    .venv/bin/python benchmarks/scale.py [--live 1000 10000] [--json]

For each N, one `swarmlab run` (a real process, the embedded default: local Ray, runners, Monty
workers, and a redis-server of the benchmark's own) grows a tree of N programs that all end up
parked in `wait()`: a root, `mids` middle programs, and their leaves, each leaf waiting on the
root. Measured while the N programs are live:

- the time from the command to N live programs (and the same per 1,000 programs);
- the memory of everything the run started: the proportional set size (PSS) of the driver and
  every process below it, of the embedded Ray's processes, and of the redis-server; and the
  machine's used memory against what it was before the run, as a second view;

then `swarmlab kill`: the time from the command to the last program's end (programs.jsonl) and
to the run's process exit. Baselines measured in the same run: an idle run (a root that only
waits, N = 1) for memory, and one `swarmlab kill` of that idle run for the kill path's own cost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from swarmlab.cluster import RedisServer

TREE = """
MID = (
    "kids = []\\nfor i in range(LEAVES):\\n"
    "    kids.append(spawn('wait(\\"p0\\")', task='leaf'))\\nwait(kids)\\n"
)
kids = []
for i in range(MIDS):
    kids.append(spawn(MID, task="mid"))
wait(kids)
"""
LIVE = re.compile(r"running=(\d+)")


def shape(live: int) -> tuple[int, int]:
    """(mids, leaves) so that 1 + mids + mids * leaves is at least `live`."""
    if live <= 2:
        return 1, 0
    mids = max(1, round((live - 1) ** 0.5))
    leaves = -(-(live - 1 - mids) // mids)
    return mids, max(0, leaves)


def program(mids: int, leaves: int) -> str:
    if leaves == 0:  # the middle programs are leaves themselves
        return f"wait([spawn('wait(\"p0\")', task='leaf') for i in range({mids})])\n"
    return TREE.replace("MIDS", str(mids)).replace("LEAVES", str(leaves))


def pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    found = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) if found else 0


def processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, command line)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        table[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmd)
    return table


def run_processes(driver: int, markers: list[str], extra: list[int]) -> set[int]:
    """The driver, everything below it, every process naming a marker, and their descendants."""
    table = processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    named = {p for p, (_, cmd) in table.items() if any(m in cmd for m in markers)}
    roots = {driver, *extra} | named
    found: set[int] = set()
    todo = [p for p in roots if p in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def used_mib() -> int:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    total = int(info["MemTotal"].split()[0])
    available = int(info["MemAvailable"].split()[0])
    return (total - available) // 1024


def swarmlab(*args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "swarmlab.cli", *args], text=True, start_new_session=True, **popen
    )


def grow_and_kill(work: Path, redis_url: str, redis_pid: int, live: int) -> dict[str, Any]:
    """One run of `live` programs: reach them, measure memory, kill, time the end."""
    mids, leaves = shape(live)
    total = 1 + mids + mids * leaves
    code = work / f"tree-{total}.py"
    code.write_text(program(mids, leaves))
    out = work / f"run-{total}"
    run_id = f"scale-{total}-{os.getpid()}"
    log = (work / f"run-{total}.err").open("w")
    before = used_mib()
    started = time.monotonic()
    # fmt: off
    driver = swarmlab(
        "run", "paperclips", "--program", str(code), "--run-id", run_id, "--out", str(out),
        "--redis-url", redis_url, "--no-telemetry",
        "--set", f"caps.programs={total + 10}", "--set", f"caps.concurrent={total + 10}",
        "--set", f"caps.children={max(mids, leaves) + 5}", "--set", "caps.depth=3",
        "--set", "caps.wall_clock_s=1800",
        stdout=subprocess.DEVNULL, stderr=log,
    )
    # fmt: on
    reached = _until_live(work / f"run-{total}.err", total, driver)
    reach_s = time.monotonic() - started
    time.sleep(2)  # let the last workers go back to the pool
    markers = [str(out), *_reaper_markers(out)]
    pids = run_processes(driver.pid, markers, [redis_pid])
    memory_mib = sum(pss_kib(p) for p in pids) / 1024
    by_kind = _by_kind(pids)
    system_mib = used_mib() - before
    kill_at = time.time()
    subprocess.run(
        [sys.executable, "-m", "swarmlab.cli", "kill", run_id, "--redis-url", redis_url],
        capture_output=True,
        check=False,
        timeout=120,
    )
    try:
        driver.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    exit_s = time.time() - kill_at
    log.close()
    ends = [
        json.loads(line).get("ended_at") or 0.0
        for line in (out / "programs.jsonl").read_text().splitlines()
    ]
    return {
        "programs": total,
        "reached": reached,
        "reach_s": round(reach_s, 2),
        "reach_s_per_1000": round(reach_s / total * 1000, 2),
        "memory_mib": round(memory_mib),
        "memory_mib_by_kind": by_kind,
        "processes": len(pids),
        "system_used_delta_mib": system_mib,
        "kill_to_last_end_s": round(max(ends) - kill_at, 3) if ends else None,
        "kill_to_exit_s": round(exit_s, 2),
        "recorded": len(ends),
    }


def _by_kind(pids: set[int]) -> dict[str, int]:
    """MiB by kind of process (redis-server, raylet, runner, sandbox worker, driver, ...)."""
    table = processes()
    kinds: dict[str, float] = {}
    for pid in pids:
        cmd = table.get(pid, (0, ""))[1]
        kind = _kind(cmd)
        kinds[kind] = kinds.get(kind, 0.0) + pss_kib(pid) / 1024
    return {k: round(v) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}


def _kind(cmd: str) -> str:
    for key, kind in (
        ("redis-server", "redis-server"),
        ("RunnerCore", "runners"),
        ("raylet", "raylet"),
        ("gcs_server", "gcs"),
        ("monty", "sandbox workers"),
        ("swarmlab.cli", "driver"),
        ("_reaper", "reaper"),
        ("ray::", "ray workers"),
    ):
        if key in cmd:
            return kind
    return cmd.split(" ", 1)[0].rsplit("/", 1)[-1] or "other"


def _until_live(err: Path, total: int, driver: subprocess.Popen[str]) -> bool:
    while driver.poll() is None:
        lines = LIVE.findall(err.read_text(errors="replace"))
        if lines and int(lines[-1]) >= total:
            return True
        time.sleep(0.5)
    return False


def _reaper_markers(out: Path) -> list[str]:
    try:
        return list(json.loads((out / ".reaper.json").read_text()).get("markers", []))
    except (OSError, ValueError):
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="swarmlab-scale-") as tmp:
        work = Path(tmp)
        with RedisServer(work / "redis") as redis:
            assert redis.pid is not None
            for live in [2, *args.live]:
                figures.append(grow_and_kill(work, redis.url, redis.pid, live))
                if not args.json:
                    _show(figures[-1], figures[0])
    if args.json:
        print(json.dumps({"idle": figures[0], "runs": figures[1:]}, indent=1))
    return 0


def _show(row: dict[str, Any], idle: dict[str, Any]) -> None:
    if row is idle:
        print(
            f"idle run (2 programs): {row['memory_mib']} MiB in {row['processes']} processes; "
            f"kill to exit {row['kill_to_exit_s']} s"
        )
        return
    extra = row["memory_mib"] - idle["memory_mib"]
    print(
        f"{row['programs']:>6} live: reached {'yes' if row['reached'] else 'NO'} in "
        f"{row['reach_s']} s ({row['reach_s_per_1000']} s per 1,000); memory {row['memory_mib']} "
        f"MiB (idle run {idle['memory_mib']}, +{extra / row['programs'] * 1024:.0f} KiB a "
        f"program; machine used +{row['system_used_delta_mib']} MiB); kill: last program ended "
        f"{row['kill_to_last_end_s']} s after the command, process exit {row['kill_to_exit_s']} "
        f"s ({row['recorded']} programs recorded)"
    )


if __name__ == "__main__":
    sys.exit(main())
