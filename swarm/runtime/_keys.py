"""The Redis layout of a run: every key name under the run's prefix, and the order key.

One schema for both languages. Python builds a run's keys with `run_key` (an unknown name is a
`ValueError`, never a stray key); the Lua scripts build them with lib.lua's `k('name')`, and a
test (tests/runtime/test_transitions_declared.py) checks that each such name is listed here.
A name ending in ':' is a family: one key per program id or runner tag after it.

The order key (a program's member of the run's order: `lb`, `ready`, `lbm`, `rdym`) is written
by `order_member` here and by lib.lua's `member`, and read back only by `member_clock_ms` /
`member_clock_h` here and lib.lua's `member_clock`: nothing else slices it.
"""

from __future__ import annotations

from functools import lru_cache

RUN_KEYS: dict[str, str] = {
    # caps and the run's state
    "limits": "hash: cap -> limit",
    "used": "hash: cap -> use so far (and live, computing_peak, parked_now, record_full)",
    "denied": "hash: cap -> denials",
    "unwritten": "hash: program id -> its latest call refused while the record was full",
    "meta": "hash: run status, deadline_ms, ordered, ...",
    "kill": "string: why the run was stopped (set once)",
    "kill-signal": "channel: the run's kill, to every runner",
    "counts": "hash: program end status -> programs",
    # programs
    "programs": "hash: program id -> record (JSON)",
    "records": "stream: every version of every record",
    "events": "stream: the run's events (JSON lines)",
    "state": "hash: program id -> queued|ready|run:<tag>|parked|gate|ending|model|its end",
    "halting": "hash: program id -> the runner told to stop it (a kill(); leave.lua)",
    "ending": "hash: program id -> its end, held until its turn (finish.lua's arguments, JSON)",
    "calls": "hash: program id -> its call, kept until its turn (script name, ARGV; JSON)",
    "nstate": "hash: state class -> programs",
    "restarts": "hash: program id -> times it started again after a runner's loss",
    "nchildren": "hash: program id -> children spawned",
    "kids:": "set per program: its children",
    "views": "hash: program id -> what wait() shows of its end (JSON)",
    "cuts": "hash: program id -> a replay's recorded cpu_s cut",
    # the journal and what it refers to
    "journal:": "hash per program: call seq -> what the call answered",
    "blobs": "hash: sha1 -> a large answer kept once",
    "completions": "list: completions.jsonl lines",
    # parked programs
    "snap": "hash: program id -> snapshot (base64)",
    "host": "hash: program id -> host state (JSON)",
    "resume": "hash: program id -> what a resumed program is told (JSON)",
    "psize": "hash: program id -> bytes it holds parked",
    "pclock": "hash: program id -> the simulated ms it parked in wait at",
    "pending:": "set per program: the programs its wait still waits on",
    "waiters:": "set per program: the programs waiting on it",
    "modeltag": "hash: program id -> the runner its model call is on",
    "unsettled": "hash: program id -> its model call's settlement, answer kept (JSON)",
    # the order and the ready queue
    "lb": "sorted set: members of the run's order (lexicographic)",
    "lbm": "hash: program id -> its member of lb",
    "ready": "sorted set: members of programs to start or resume",
    "rdym": "hash: program id -> its member of ready",
    "idle": "set: runners that found the ready queue empty",
    "running:": "set per runner: the programs it computes",
    "turn:": "channel per runner: a program's turn may have come",
    "stop:": "channel per runner: stop computing a program",
    "wake:": "channel per runner: a program is ready",
    # shared state
    "bb": "hash: blackboard key -> value (JSON)",
    "bbw": "hash: blackboard key -> its last writer",
    "bbk": "sorted set: the blackboard's keys, in byte order (db_keys reads a range of it)",
    "edges": "set: cross-lineage reads (reader<writer)",
    "inflight": "sorted set: model-server slots by lease end",
    "world:": "family: the simulated world's ledger keys",
    "telemetry:": "family: spans and metrics lines kept for the run directory",
}

MAX_CLOCK_H = 1_000_000.0
"""Simulated clocks are bounded (a program sleeping for ages must not overflow the order)."""
CLOCK_DIGITS = 16
"""The order key starts with this many digits of simulated milliseconds."""
MS_PER_H = 3_600_000


def run_key(prefix: str, name: str, suffix: str = "") -> str:
    """The key `name` of the run whose prefix is `prefix` (`suffix`: a family's program id or
    runner tag)."""
    if name not in RUN_KEYS:
        raise ValueError(f"{name!r} is not a key of the run's schema (swarmlab.runtime._keys)")
    if suffix and not name.endswith(":"):
        raise ValueError(f"{name!r} is one key, not a family")
    return prefix + name + suffix


def clock_ms(clock_h: float) -> int:
    """A simulated time as the order counts it: whole milliseconds, bounded."""
    return round(max(0.0, min(clock_h, MAX_CLOCK_H)) * MS_PER_H)


def order_member(clock_h: float, program_id: str) -> str:
    """A program's place in the run's order at a simulated time (as lua/lib.lua's `member`):
    16 digits of milliseconds, the id's parts six digits each, then the id."""
    return f"{clock_ms(clock_h):0{CLOCK_DIGITS}d}!{_order_id(program_id)}"


def member_clock_ms(member: str) -> int:
    """The simulated milliseconds a member of the order stands at."""
    digits = member[:CLOCK_DIGITS]
    if len(digits) != CLOCK_DIGITS or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"{member[:40]!r} is not a member of the run's order")
    return int(digits)


def member_clock_h(member: str) -> float:
    """The simulated hours a member of the order stands at."""
    return member_clock_ms(member) / MS_PER_H


@lru_cache(maxsize=65_536)
def _order_id(program_id: str) -> str:
    parts = ".".join(f"{int(p):06d}" for p in program_id[1:].split("."))
    return f"{parts}!{program_id}"
