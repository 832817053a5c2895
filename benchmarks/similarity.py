"""Code similarity and the report on a large run, each next to its baseline, in one run.

    .venv/bin/python benchmarks/similarity.py [--difflib-max-kb 16] [--json]

1. One comparison of two programs. Baseline: the measure the lab used before (difflib's
   `SequenceMatcher(autojunk=False).ratio()` over the characters of comment-stripped code, kept
   here verbatim). Now: `swarmlab.core.recreation_score`. CPU time of this process, so that
   other work on the machine does not count. Pairs of 2 to 64 KB cut from the
   repository's own source: an edited copy (a realistic re-creation) and a copy with its lines
   shuffled (difflib's bad case). difflib runs up to --difflib-max-kb (it is quadratic or
   worse: about 5 s per 8 KB pair and 140 s per 32 KB pair on this project's 2-core machine);
   past that its time is extrapolated from the largest measured size and marked as such.
2. `swarmlab report` (the CLI, in a fresh process, as a user runs it) on a run of 200 programs
   of 64 KB each, in a tree 6 deep, once with ordinary code (repository source) and once with
   hostile code (one-line expressions of 32,000 terms, 64 KB of distinct attribute lines,
   shuffled lines, unclosed strings, comment floods); baseline: the same report on the same tree
   with 1 KB programs (what the report costs whatever the code).
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tokenize
from pathlib import Path
from typing import Any

from swarmlab.core import recreation_score
from swarmlab.spec import ExperimentSpec

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "".join(p.read_text() for p in sorted((ROOT / "swarm").rglob("*.py")))


# --- the old measure, verbatim (the baseline) ---------------------------------------------------


def old_normalize(code: str) -> str:
    lines = code.split("\n")
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start
                lines[row - 1] = lines[row - 1][:col]
    except (tokenize.TokenError, SyntaxError):
        lines = [line for line in code.split("\n") if not line.lstrip().startswith("#")]
    return "\n".join(line.rstrip() for line in lines if line.strip())


def old_similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, old_normalize(a), old_normalize(b), autojunk=False).ratio()


# --- 1. one comparison ----------------------------------------------------------------------------


def pair(kind: str, size: int, seed: int = 1) -> tuple[str, str]:
    start = random.Random(seed).randrange(0, len(SOURCE) - size)
    a = SOURCE[start : start + size]
    if kind == "edited":
        return a, a.replace("def ", "def  ").replace(" = ", " =  ").replace("self.", "me.")
    lines = a.splitlines()
    random.Random(seed).shuffle(lines)
    return a, "\n".join(lines)


def timed(fn: Any, *args: Any, repeat: int = 1) -> float:
    """CPU seconds of this process (best of `repeat`): fair on a machine others share."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - start)
    return best


def compare_measures(difflib_max_kb: int) -> list[dict[str, Any]]:
    rows = []
    for kind in ("edited", "shuffled"):
        measured: tuple[int, float] | None = None
        for kb in (2, 4, 8, 16, 32, 64):
            a, b = pair(kind, kb * 1000)
            new = timed(recreation_score, a, b, repeat=3)
            if kb <= difflib_max_kb:
                old, how = timed(old_similarity, a, b), "measured"
                measured = (kb, old)
            else:  # quadratic growth from the largest measured size: a lower bound
                assert measured is not None
                old, how = measured[1] * (kb / measured[0]) ** 2, "extrapolated (x size^2)"
            row = {"pair": kind, "kb": kb, "new_ms": new * 1000, "old_ms": old * 1000}
            rows.append(row | {"old": how, "speedup": old / new, "score": recreation_score(a, b)})
    return rows


# --- 2. the report on 200 programs of 64 KB ---------------------------------------------------


def hostile(i: int, size: int) -> str:
    kind = i % 5
    if kind == 0:
        return "x = " + "a+" * (size // 2 - 4)
    if kind == 1:
        return "".join(f"v.a{n} = {n}\n" for n in range(size // 12))[:size]
    if kind == 2:
        lines = SOURCE[(i * 7919) % 100_000 :][:size].splitlines()
        random.Random(i).shuffle(lines)
        return "\n".join(lines)
    if kind == 3:
        return "'''" + "\n" * (size - 3)
    return "#\n" * (size // 2)


def ordinary(i: int, size: int) -> str:
    start = (i * 7919) % (len(SOURCE) - size)
    return SOURCE[start : start + size]


def tree_ids(n: int, depth: int = 6, fanout: int = 3) -> list[str]:
    ids, frontier = ["p0"], ["p0"]
    while len(ids) < n:
        nxt = []
        for parent in frontier:
            for k in range(1, fanout + 1):
                if len(ids) >= n:
                    break
                child = f"{parent}.{k}"
                if child.count(".") <= depth:
                    ids.append(child)
                    nxt.append(child)
        frontier = nxt or ["p0"]
    return ids


def write_run(out: Path, code_of: Any, n: int = 200, size: int = 64_000) -> Path:
    out.mkdir(parents=True)
    ids = tree_ids(n)
    programs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i, pid in enumerate(ids):
        t = 1000.0 + i
        parent = pid.rsplit(".", 1)[0] if "." in pid else None
        programs.append({
            "id": pid, "parent_id": parent, "depth": pid.count("."), "task": f"task {i}",
            "code": code_of(i, size), "status": "completed", "error": None, "output": "",
            "created_at": t, "started_at": t, "ended_at": t + 0.5})  # fmt: skip
        events += [
            {"t": t, "program": pid, "kind": "start", "decision": "info", "detail": {}},
            {"t": t + 0.1, "program": pid, "kind": "run_ai", "decision": "allowed",
             "detail": {"prompt_tokens": 50, "completion_tokens": 200, "answer": "..."}},
            {"t": t + 0.2, "program": pid, "kind": "db_get", "decision": "allowed",
             "detail": {"key": "k", "writer": ids[(i * 31) % len(ids)]}},
            {"t": t + 0.5, "program": pid, "kind": "end", "decision": "info",
             "detail": {"status": "completed", "error": ""}},
        ]  # fmt: skip
        if parent:
            events.append({"t": t - 0.01, "program": parent, "kind": "spawn",
                           "decision": "allowed", "detail": {"child": pid,
                           "provenance": "completion"}})  # fmt: skip
    (out / "programs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in programs))
    events.sort(key=lambda e: float(e["t"]))
    (out / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    spec = ExperimentSpec(name="bench")
    summary = {
        "run_id": out.name, "status": "completed", "ended_because": "benchmark",
        "model": {"backend": "sim", "name": "sim:bench"},
        "programs": {"total": n, "by_status": {"completed": n}},
        "tree": {"size": n, "max_depth": 6, "branching": 3.0, "root": "file"},
        "scaffold": True, "caps": {}, "program_limits": {}, "outcome": {}, "events": len(events),
        "duration_s": 1.0, "started_at": 1000.0, "ended_at": 1001.0,
        "spec": spec.model_dump(mode="json"),
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary))
    return out


def report_seconds(run: Path) -> dict[str, float]:
    """Wall-clock and CPU seconds of `swarmlab report RUN` (CPU: the machine may be shared)."""
    cli = Path(sys.executable).with_name("swarmlab")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(cli), "report", str(run)], check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall_s": wall, "cpu_s": cpu}


def time_reports() -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "1 KB programs (baseline)": write_run(Path(tmp) / "small", ordinary, size=1000),
            "64 KB ordinary programs": write_run(Path(tmp) / "ordinary", ordinary),
            "64 KB hostile programs": write_run(Path(tmp) / "hostile", hostile),
        }
        return {name: report_seconds(run) for name, run in runs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difflib-max-kb", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="skip the pair comparison")
    args = parser.parse_args(argv)
    pairs = [] if args.report_only else compare_measures(args.difflib_max_kb)
    reports = time_reports()
    if args.json:
        print(json.dumps({"pairs": pairs, "report_s": reports}, indent=1))
        return 0
    print("one comparison, CPU time: old (difflib ratio) vs new (recreation_score)")
    for r in pairs:
        print(
            f"  {r['pair']:8} {r['kb']:3} KB  new {r['new_ms']:8.2f} ms  old {r['old_ms']:11.1f} ms"
            f" ({r['old']})  x{r['speedup']:,.0f}  score {r['score']:.2f}"
        )
    print("swarmlab report, 200 programs (a fresh process; CPU: user + system)")
    for name, t in reports.items():
        print(f"  {name:28} wall {t['wall_s']:6.2f} s   cpu {t['cpu_s']:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
