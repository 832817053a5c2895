"""The coordinator: a run's state in Redis, as the driver and the command line see it.

The run's caps, meta data, kill switch, event stream and records live under one key prefix.
Everything that changes a program's state or charges a cap is a Lua script run by the
scheduler (`_scheduler.py`, `lua/`), so concurrent programs on any runner can never push a
counter past its limit. If Redis cannot be reached, nothing proceeds (fail closed).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from swarmlab.core import CoordinatorUnavailable, parse_number
from swarmlab.records import Event, ProgramRecord
from swarmlab.spec import TELEMETRY_BYTES, TELEMETRY_CAP, Caps, shown_redis_url

from ._keys import run_key
from ._scripts import ScriptConnection
from ._stored import held_events, latest, stored_record

RUNS_KEY = "swarmlab:runs"
MAX_CONNECTIONS = 48
CAP_NAMES: tuple[str, ...] = tuple(Caps.model_fields)

T = TypeVar("T")


def run_prefix(run_id: str) -> str:
    return f"swarmlab:run:{run_id}:"


def sweep_keys(sweep_id: str | None) -> list[str]:
    """The sweep's limits and usage hashes (keys that never exist when there is no sweep)."""
    base = f"swarmlab:sweep:{sweep_id}:" if sweep_id else "swarmlab:no-sweep:"
    return [base + "limits", base + "used"]


class Coordinator:
    """A run's shared state: caps, program records, blackboard, kill switch, event stream."""

    def __init__(self, url: str, run_id: str, sweep_id: str | None = None) -> None:
        self.url = url
        self.run_id = run_id
        self.prefix = run_prefix(run_id)
        self.sweep_keys = sweep_keys(sweep_id)
        # Typed loosely: redis-py's stubs do not follow decode_responses=True, so every reply
        # would need a cast; replies here are always str.
        # A blocking pool: hundreds of programs on one runner queue for a connection
        # instead of failing when all are busy.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=30,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=30,
        )
        self.client: Any = aioredis.Redis(connection_pool=pool)
        self.scripts = ScriptConnection(url) if ScriptConnection.usable(url) else None
        """The programs' scripts go over this connection (`_scripts.py`); None: over `client`."""

    def _key(self, name: str, suffix: str = "") -> str:
        return run_key(self.prefix, name, suffix)

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation; any failure to reach Redis is `CoordinatorUnavailable`."""
        try:
            return await op()
        except (RedisError, OSError) as exc:
            raise CoordinatorUnavailable(
                f"coordinator at {shown_redis_url(self.url)} unreachable "
                f"({type(exc).__name__}: {exc}); nothing proceeds without it"
            ) from None

    async def ping(self) -> None:
        await self.call(self.client.ping)

    async def close(self) -> None:
        if self.scripts is not None:
            await self.scripts.close()
        await self.client.aclose(close_connection_pool=True)

    # --- run lifecycle -------------------------------------------------------------------

    async def init_run(self, caps: Caps, meta: dict[str, str], ordered: bool = True) -> None:
        """Set the run's caps and meta data; `ordered` runs keep the order of simulated time."""
        limits = caps.model_dump() | {TELEMETRY_CAP: TELEMETRY_BYTES}
        deadline_ms = int((time.time() + caps.wall_clock_s) * 1000)
        meta = meta | {"deadline_ms": str(deadline_ms), "ordered": "1" if ordered else "0"}

        async def op() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self._key("limits"), mapping={k: int(v) for k, v in limits.items()})
            zeros = {c: 0 for c in (*CAP_NAMES, TELEMETRY_CAP)}
            pipe.hset(self._key("used"), mapping=zeros | {"live": 0})
            pipe.hset(self._key("meta"), mapping=meta)
            pipe.sadd(RUNS_KEY, self.run_id)
            await pipe.execute()

        await self.call(op)

    async def set_cuts(self, cuts: dict[str, str]) -> None:
        """A replay's recorded `cpu_s` cuts, by program id (runners read them at claim)."""
        if cuts:
            await self.call(lambda: self.client.hset(self._key("cuts"), mapping=cuts))

    async def set_meta(self, **fields: str) -> None:
        await self.call(lambda: self.client.hset(self._key("meta"), mapping=fields))

    async def meta(self) -> dict[str, str]:
        return await self.call(lambda: self.client.hgetall(self._key("meta")))

    async def claim_recovery(self, by: str) -> bool:
        """Whether this caller is the first to write the run's directory for a driver that died
        (two watchdogs may both see it die)."""
        meta = self._key("meta")
        return bool(await self.call(lambda: self.client.hsetnx(meta, "recovering", by)))

    async def kill(self, reason: str) -> bool:
        """Stop the run: every further call is refused and runners stop what they compute.
        True if this call stopped it."""

        async def op() -> bool:
            first = bool(await self.client.set(self._key("kill"), reason, nx=True))
            if first:
                await self.client.publish(self._key("kill-signal"), reason)
            return first

        return await self.call(op)

    async def kill_reason(self) -> str | None:
        return await self.call(lambda: self.client.get(self._key("kill")))

    async def exists(self) -> bool:
        return bool(await self.call(lambda: self.client.exists(self._key("meta"))))

    async def usage(self) -> dict[str, dict[str, float]]:
        """Each cap's limit, used and denied, plus the live program count under 'live'."""

        async def op() -> tuple[Any, Any, Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self._key("limits"))
            pipe.hgetall(self._key("used"))
            pipe.hgetall(self._key("denied"))
            return tuple(await pipe.execute())

        limits, used, denied = await self.call(op)
        tables = {"limit": (limits, "limits"), "used": (used, "used"), "denied": (denied, "denied")}

        def number(part: str, cap: str) -> float:
            # A shared Redis may hold anything under the run's keys: one line, never a crash.
            table, key = tables[part]
            return parse_number(table.get(cap, 0), f"{self._key(key)} field {cap!r}")

        out: dict[str, dict[str, float]] = {}
        for cap in list(limits) + [c for c in denied if c not in limits]:
            out[cap] = {part: number(part, cap) for part in tables}
        for extra in ("live", "computing_peak"):
            out[extra] = {"limit": 0.0, "used": number("used", extra), "denied": 0.0}
        return out

    async def states(self) -> dict[str, int]:
        """How many programs wait for a worker, compute, or are parked (read back: parsed)."""
        raw = await self.call(lambda: self.client.hgetall(self._key("nstate")))
        where = self._key("nstate")
        return {k: int(parse_number(v, f"{where} field {k[:40]!r}")) for k, v in raw.items()}

    async def note_denial(self, cap: str) -> None:
        """Count a denial decided outside Redis (a per-program sandbox limit)."""
        await self.call(lambda: self.client.hincrby(self._key("denied"), cap, 1))

    # --- programs ------------------------------------------------------------------------

    async def put_program(self, record: ProgramRecord) -> None:
        await self.call(
            lambda: self.client.hset(self._key("programs"), record.id, record.to_json())
        )

    async def get_program(self, program_id: str) -> ProgramRecord | None:
        raw = await self.call(lambda: self.client.hget(self._key("programs"), program_id))
        return stored_record(raw) if raw else None

    async def get_programs(self, ids: list[str]) -> list[ProgramRecord | None]:
        if not ids:
            return []
        raws = await self.call(lambda: self.client.hmget(self._key("programs"), ids))
        return [stored_record(r) if r else None for r in raws]

    async def all_programs(self) -> list[ProgramRecord]:
        """Every program's record as of its latest state (`_stored.latest`): one not ended
        takes its end held for its turn, or the host state it last left."""

        async def op() -> list[Any]:
            pipe = self.client.pipeline(transaction=True)
            for name in ("programs", "host", "ending"):
                pipe.hgetall(self._key(name))
            return list(await pipe.execute())

        raws, hosts, held = await self.call(op)
        return [latest(raw, hosts.get(i), held.get(i)) for i, raw in raws.items()]

    async def held_events(self) -> list[Event]:
        """The events of ends held for their turn (`ending`), but the ends themselves."""
        held = await self.call(lambda: self.client.hgetall(self._key("ending")))
        return [event for text in held.values() for event in held_events(text)]

    async def journals(self, ids: list[str]) -> dict[str, dict[int, str]]:
        """Each program's journal: the answer of every call it made, by sequence number."""

        async def op() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for program_id in ids:
                pipe.hgetall(self._key("journal:", program_id))
            return list(await pipe.execute())

        raws = await self.call(op) if ids else []
        return {i: {int(k): v for k, v in raw.items()} for i, raw in zip(ids, raws, strict=True)}

    async def blobs(self) -> dict[str, str]:
        """Large answers kept once, by SHA-1 (journal entries refer to them)."""
        return dict(await self.call(lambda: self.client.hgetall(self._key("blobs"))))

    async def count(self, field: str, amount: int = 1) -> None:
        """Bump a progress counter (programs by status, and the like)."""
        await self.call(lambda: self.client.hincrby(self._key("counts"), field, amount))

    async def counts(self) -> dict[str, int]:
        raw = await self.call(lambda: self.client.hgetall(self._key("counts")))
        return {k: int(v) for k, v in raw.items()}

    # --- blackboard ----------------------------------------------------------------------

    async def blackboard(self) -> dict[str, Any]:
        raw = await self.call(lambda: self.client.hgetall(self._key("bb")))
        return {k: json.loads(v) for k, v in sorted(raw.items())}

    # --- events --------------------------------------------------------------------------

    async def emit(self, *events: Event) -> None:
        """Add events to the run's stream (one JSON object each, field `e`)."""
        if not events:
            return

        async def op() -> None:
            pipe = self.client.pipeline(transaction=False)
            for event in events:
                pipe.xadd(self._key("events"), {"e": event.model_dump_json()})
            await pipe.execute()

        await self.call(op)

    async def events(self, after: str = "-", count: int = 5000) -> list[tuple[str, Event]]:
        """Events after stream id `after` (exclusive unless '-'), oldest first."""
        start = after if after == "-" else f"({after}"
        rows = await self.call(lambda: self.client.xrange(self._key("events"), start, "+", count))
        return [(rid, Event.model_validate_json(fields["e"])) for rid, fields in rows]

    async def records(self, after: str = "-", count: int = 5000) -> list[tuple[str, str]]:
        """Program records as they were written (at admission and at the end), oldest first."""
        start = after if after == "-" else f"({after}"
        rows = await self.call(lambda: self.client.xrange(self._key("records"), start, "+", count))
        return [(rid, fields["r"]) for rid, fields in rows]

    async def read_streams(
        self, after_record: str, after_event: str, block_ms: int, count: int
    ) -> tuple[list[tuple[str, str]], list[tuple[str, Event]]]:
        """New program records and events past the given ids, waiting up to `block_ms` for any."""
        streams = {
            self._key("records"): "0-0" if after_record == "-" else after_record,
            self._key("events"): "0-0" if after_event == "-" else after_event,
        }
        reply = await self.call(lambda: self.client.xread(streams, count=count, block=block_ms))
        records: list[tuple[str, str]] = []
        events: list[tuple[str, Event]] = []
        for stream, rows in reply or []:
            if stream == self._key("records"):
                records += [(rid, fields["r"]) for rid, fields in rows]
            else:
                events += [(rid, Event.model_validate_json(fields["e"])) for rid, fields in rows]
        return records, events

    async def all_events(self) -> list[Event]:
        out: list[Event] = []
        last = "-"
        while True:
            batch = await self.events(last)
            if not batch:
                return out
            out += [e for _, e in batch]
            last = batch[-1][0]

    async def completions(self) -> list[str]:
        return list(await self.call(lambda: self.client.lrange(self._key("completions"), 0, -1)))

    async def telemetry_lines(self, stream: str) -> list[str]:
        """Every JSON line a stream of telemetry received ('spans', 'metrics')."""
        key = self._key("telemetry:", stream)
        return list(await self.call(lambda: self.client.lrange(key, 0, -1)))

    async def delete_run(self) -> None:
        """Drop every key of the run (after its directory is written).

        The scan's pattern is the run's prefix taken literally (glob characters escaped), so a
        run id can never widen it to other runs' keys.
        """
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", self.prefix) + "*"

        async def op() -> None:
            keys = [k async for k in self.client.scan_iter(match=pattern, count=500)]
            if keys:
                await self.client.delete(*keys)
            await self.client.srem(RUNS_KEY, self.run_id)

        await self.call(op)


class TelemetrySink:
    """Ships telemetry JSON lines of any process of a run into Redis (called from exporter
    threads, so it is synchronous); the driver writes them to the run directory."""

    def __init__(self, url: str, run_id: str, budget: int = TELEMETRY_BYTES) -> None:
        self.prefix = run_prefix(run_id)
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        self.budget = budget

    def __call__(self, stream: str, lines: list[str]) -> None:
        """Keep `lines` while the run's telemetry budget lasts; count the rest as denied. Each
        batch reserves its bytes at once (HINCRBY), so processes sharing the budget never pass
        it together, and gives back what it did not keep."""
        if not lines:
            return
        sizes = [len(line.encode()) for line in lines]
        asked = sum(sizes)
        used = run_key(self.prefix, "used")
        room = self.budget - (int(self.client.hincrby(used, TELEMETRY_CAP, asked)) - asked)
        keep = kept = 0
        for size in sizes:
            if kept + size > room:
                break
            keep, kept = keep + 1, kept + size
        pipe = self.client.pipeline(transaction=False)
        if keep:
            pipe.rpush(run_key(self.prefix, "telemetry:", stream), *lines[:keep])
        if keep < len(lines):
            pipe.hincrby(used, TELEMETRY_CAP, kept - asked)
            pipe.hincrby(run_key(self.prefix, "denied"), TELEMETRY_CAP, len(lines) - keep)
        pipe.execute()

    def lines(self, stream: str, start: int, count: int) -> list[str]:
        """Up to `count` lines a stream kept, from line `start` on (the span forwarder's read)."""
        key = run_key(self.prefix, "telemetry:", stream)
        found = self.client.lrange(key, start, start + count - 1)
        return [
            line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
            for line in found
        ]

    def close(self) -> None:
        self.client.close()


async def _one_shot(url: str, op: Callable[[Any], Awaitable[T]]) -> T:
    """One operation on a fresh client, closed after; a failure to reach Redis (connection,
    timeout, a reply error) is `CoordinatorUnavailable`, as it is on the run's coordinator."""
    client: Any = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
    try:
        return await op(client)
    except (RedisError, OSError) as exc:
        raise CoordinatorUnavailable(
            f"coordinator at {shown_redis_url(url)} unreachable ({exc})"
        ) from None
    finally:
        await client.aclose()


async def init_sweep(url: str, sweep_id: str, limits: dict[str, int], used: dict[str, int]) -> None:
    """Set a sweep's global caps, and what finished runs of it already used (on resume)."""
    limits_key, used_key = sweep_keys(sweep_id)

    async def op(client: Any) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.delete(limits_key, used_key)
        if limits:
            pipe.hset(limits_key, mapping=limits)
            pipe.hset(used_key, mapping={cap: used.get(cap, 0) for cap in limits})
        await pipe.execute()

    await _one_shot(url, op)


async def sweep_usage(url: str, sweep_id: str) -> dict[str, dict[str, int]]:
    """The sweep's caps: limit and use of each (a shared Redis is hostile: numbers checked)."""
    limits_key, used_key = sweep_keys(sweep_id)

    async def op(client: Any) -> tuple[dict[str, str], dict[str, str]]:
        return await client.hgetall(limits_key), await client.hgetall(used_key)

    limits, used = await _one_shot(url, op)
    return {
        c: {
            "limit": int(parse_number(v, f"{limits_key} field {c!r}")),
            "used": int(parse_number(used.get(c, 0), f"{used_key} field {c!r}")),
        }
        for c, v in limits.items()
    }


async def live_runs(url: str) -> list[str]:
    async def op(client: Any) -> list[str]:
        return sorted(str(m) for m in await client.smembers(RUNS_KEY))

    return await _one_shot(url, op)
