"""The coordinator: the only module that keeps a run's state in Redis.

Every cap is checked and charged in one Lua script, so concurrent programs on any runner can
never push a counter past its limit. If Redis cannot be reached, nothing proceeds.
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

from swarmlab.core import CapExceeded, CoordinatorUnavailable, RunKilled
from swarmlab.records import Event, ProgramRecord
from swarmlab.spec import Caps

RUNS_KEY = "swarmlab:runs"
MAX_CONNECTIONS = 48
CAP_NAMES: tuple[str, ...] = tuple(Caps.model_fields)

T = TypeVar("T")

# Shared head of the scripts: refuse everything once the run is stopped or out of time.
_GUARD = """
local function deny(cap, lim, asked)
  redis.call('HINCRBY', KEYS[3], cap, 1)
  return {0, cap, tostring(lim or ''), tostring(asked or '')}
end
if redis.call('EXISTS', KEYS[4]) == 1 then return {0, 'killed'} end
local deadline = tonumber(redis.call('HGET', KEYS[5], 'deadline_ms') or '0')
if deadline > 0 then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > deadline then
    return deny('wall_clock_s')
  end
end
local function limit(cap) return tonumber(redis.call('HGET', KEYS[1], cap)) end
local function used(cap) return tonumber(redis.call('HGET', KEYS[2], cap) or '0') end
-- The last two keys: the limits and usage of the sweep this run belongs to (absent if none).
local SWEEP_LIMITS, SWEEP_USED = KEYS[#KEYS - 1], KEYS[#KEYS]
local function sweep_fits(cap, n)
  local lim = redis.call('HGET', SWEEP_LIMITS, cap)
  if not lim then return true end
  return tonumber(redis.call('HGET', SWEEP_USED, cap) or '0') + n <= tonumber(lim)
end
local function sweep_charge(cap, n)
  if redis.call('HEXISTS', SWEEP_LIMITS, cap) == 1 then
    redis.call('HINCRBY', SWEEP_USED, cap, n)
  end
end
"""

# KEYS: limits used denied kill meta nchildren; ARGV: parent_id ('' for the root), depth
_ADMIT = (
    _GUARD
    + """
local depth = tonumber(ARGV[2])
if depth > limit('depth') then return deny('depth', limit('depth'), depth) end
local kids = 0
if ARGV[1] ~= '' then
  kids = tonumber(redis.call('HGET', KEYS[6], ARGV[1]) or '0')
  if kids + 1 > limit('children') then return deny('children', limit('children'), kids + 1) end
end
if used('programs') + 1 > limit('programs') then
  return deny('programs', limit('programs'), used('programs') + 1)
end
if not sweep_fits('programs', 1) then return deny('sweep.programs') end
local live = tonumber(redis.call('HGET', KEYS[2], 'live') or '0')
if live + 1 > limit('concurrent') then return deny('concurrent', limit('concurrent'), live + 1) end
redis.call('HINCRBY', KEYS[2], 'programs', 1)
sweep_charge('programs', 1)
redis.call('HSET', KEYS[2], 'live', live + 1)
if live + 1 > used('concurrent') then redis.call('HSET', KEYS[2], 'concurrent', live + 1) end
if depth > used('depth') then redis.call('HSET', KEYS[2], 'depth', depth) end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[1], kids + 1)
  if kids + 1 > used('children') then redis.call('HSET', KEYS[2], 'children', kids + 1) end
end
return {1, tostring(kids + 1)}
"""
)

# KEYS: limits used denied kill meta; ARGV: cap1 n1 cap2 n2 ... (all or nothing)
_RESERVE = (
    _GUARD
    + """
for i = 1, #ARGV, 2 do
  local asked = used(ARGV[i]) + tonumber(ARGV[i + 1])
  if asked > limit(ARGV[i]) then return deny(ARGV[i], limit(ARGV[i]), asked) end
  if not sweep_fits(ARGV[i], tonumber(ARGV[i + 1])) then return deny('sweep.' .. ARGV[i]) end
end
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  sweep_charge(ARGV[i], tonumber(ARGV[i + 1]))
end
return {1, ''}
"""
)

# KEYS: limits used denied kill meta bb bbw; ARGV: key value writer
_BB_PUT = (
    _GUARD
    + """
local old = redis.call('HGET', KEYS[6], ARGV[1])
local delta
if old then delta = #ARGV[2] - #old else delta = #ARGV[1] + #ARGV[2] end
if delta > 0 and used('blackboard_bytes') + delta > limit('blackboard_bytes') then
  return deny('blackboard_bytes', limit('blackboard_bytes'), used('blackboard_bytes') + delta)
end
redis.call('HINCRBY', KEYS[2], 'blackboard_bytes', delta)
redis.call('HSET', KEYS[6], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[7], ARGV[1], ARGV[3])
return {1, tostring(delta)}
"""
)


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
        k = self._key
        self._guard_keys = [k("limits"), k("used"), k("denied"), k("kill"), k("meta")]
        self._admit = self.client.register_script(_ADMIT)
        self._reserve = self.client.register_script(_RESERVE)
        self._bb_put = self.client.register_script(_BB_PUT)

    def _key(self, name: str) -> str:
        return self.prefix + name

    async def _do(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except (RedisError, OSError) as exc:
            raise CoordinatorUnavailable(
                f"coordinator at {self.url} unreachable ({type(exc).__name__}: {exc}); "
                "nothing proceeds without it"
            ) from None

    async def ping(self) -> None:
        await self._do(self.client.ping)

    async def close(self) -> None:
        await self.client.aclose(close_connection_pool=True)

    # --- run lifecycle -------------------------------------------------------------------

    async def init_run(self, caps: Caps, meta: dict[str, str]) -> None:
        limits = caps.model_dump()
        deadline_ms = int((time.time() + caps.wall_clock_s) * 1000)

        async def op() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self._key("limits"), mapping={k: int(v) for k, v in limits.items()})
            pipe.hset(self._key("used"), mapping={c: 0 for c in CAP_NAMES} | {"live": 0})
            pipe.hset(self._key("meta"), mapping=meta | {"deadline_ms": str(deadline_ms)})
            pipe.sadd(RUNS_KEY, self.run_id)
            await pipe.execute()

        await self._do(op)

    async def set_meta(self, **fields: str) -> None:
        await self._do(lambda: self.client.hset(self._key("meta"), mapping=fields))

    async def meta(self) -> dict[str, str]:
        return await self._do(lambda: self.client.hgetall(self._key("meta")))

    async def kill(self, reason: str) -> bool:
        """Stop the run: every further reservation is refused. True if this call stopped it."""
        return bool(await self._do(lambda: self.client.set(self._key("kill"), reason, nx=True)))

    async def kill_reason(self) -> str | None:
        return await self._do(lambda: self.client.get(self._key("kill")))

    async def exists(self) -> bool:
        return bool(await self._do(lambda: self.client.exists(self._key("meta"))))

    # --- caps ----------------------------------------------------------------------------

    async def admit(self, parent_id: str | None, depth: int) -> int:
        """Reserve a program slot; returns the child's index under its parent (1-based)."""
        reply = await self._do(
            lambda: self._admit(
                keys=[*self._guard_keys, self._key("nchildren"), *self.sweep_keys],
                args=[parent_id or "", depth],
            )
        )
        if not int(reply[0]):
            raise self._denial(reply)
        return int(reply[1])

    async def reserve(self, **amounts: int) -> None:
        """Charge every named cap, all or nothing; `CapExceeded` names the cap that said no."""
        args: list[Any] = []
        for cap, amount in amounts.items():
            args += [cap, int(amount)]
        keys = [*self._guard_keys, *self.sweep_keys]
        reply = await self._do(lambda: self._reserve(keys=keys, args=args))
        if not int(reply[0]):
            raise self._denial(reply)

    async def settle(self, cap: str, delta: int) -> None:
        """Correct a reservation to what was really used (delta is negative when less)."""
        if not delta:
            return

        async def op() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.hincrby(self._key("used"), cap, delta)
            if self.sweep_keys[0].startswith("swarmlab:sweep:"):
                pipe.hincrby(self.sweep_keys[1], cap, delta)
            await pipe.execute()

        await self._do(op)

    async def release_program(self) -> None:
        await self._do(lambda: self.client.hincrby(self._key("used"), "live", -1))

    async def note_denial(self, cap: str) -> None:
        """Count a denial decided outside Redis (a per-program sandbox limit)."""
        await self._do(lambda: self.client.hincrby(self._key("denied"), cap, 1))

    def _denial(self, reply: list[Any]) -> Exception:
        """The exception for a script's refusal: {0, cap[, limit, asked]}."""
        cap = str(reply[1])
        if cap == "killed":
            return RunKilled("the run was stopped")
        limit, asked = (_number(v) for v in ([*list(reply[2:4]), "", ""])[:2])
        return CapExceeded(cap, limit=limit, asked=asked)

    async def usage(self) -> dict[str, dict[str, float]]:
        """Each cap's limit, used and denied, plus the live program count under 'live'."""

        async def op() -> tuple[Any, Any, Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self._key("limits"))
            pipe.hgetall(self._key("used"))
            pipe.hgetall(self._key("denied"))
            return tuple(await pipe.execute())

        limits, used, denied = await self._do(op)
        out: dict[str, dict[str, float]] = {}
        for cap in list(limits) + [c for c in denied if c not in limits]:
            out[cap] = {
                "limit": float(limits.get(cap, 0)),
                "used": float(used.get(cap, 0)),
                "denied": float(denied.get(cap, 0)),
            }
        out["live"] = {"limit": 0.0, "used": float(used.get("live", 0)), "denied": 0.0}
        return out

    # --- programs ------------------------------------------------------------------------

    async def put_program(self, record: ProgramRecord) -> None:
        await self._do(lambda: self.client.hset(self._key("programs"), record.id, record.to_json()))

    async def get_program(self, program_id: str) -> ProgramRecord | None:
        raw = await self._do(lambda: self.client.hget(self._key("programs"), program_id))
        return ProgramRecord.from_json(raw) if raw else None

    async def get_programs(self, ids: list[str]) -> list[ProgramRecord | None]:
        if not ids:
            return []
        raws = await self._do(lambda: self.client.hmget(self._key("programs"), ids))
        return [ProgramRecord.from_json(r) if r else None for r in raws]

    async def all_programs(self) -> list[ProgramRecord]:
        raws = await self._do(lambda: self.client.hgetall(self._key("programs")))
        return [ProgramRecord.from_json(r) for r in raws.values()]

    async def count(self, field: str, amount: int = 1) -> None:
        """Bump a progress counter (programs by status, and the like)."""
        await self._do(lambda: self.client.hincrby(self._key("counts"), field, amount))

    async def counts(self) -> dict[str, int]:
        raw = await self._do(lambda: self.client.hgetall(self._key("counts")))
        return {k: int(v) for k, v in raw.items()}

    # --- blackboard ----------------------------------------------------------------------

    async def bb_put(self, key: str, value_json: str, writer: str) -> int:
        """Store a value; returns the blackboard bytes charged (negative when it shrank)."""
        keys = [*self._guard_keys, self._key("bb"), self._key("bbw"), *self.sweep_keys]
        reply = await self._do(lambda: self._bb_put(keys=keys, args=[key, value_json, writer]))
        if not int(reply[0]):
            raise self._denial(reply)
        return int(reply[1])

    async def bb_get(self, key: str) -> tuple[str | None, str | None]:
        """The value's JSON and the id of the program that wrote it."""

        async def op() -> tuple[Any, Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hget(self._key("bb"), key)
            pipe.hget(self._key("bbw"), key)
            return tuple(await pipe.execute())

        return await self._do(op)

    async def bb_keys(self, prefix: str) -> list[str]:
        keys = await self._do(lambda: self.client.hkeys(self._key("bb")))
        return sorted(k for k in keys if k.startswith(prefix))

    async def add_edge(self, reader: str, writer: str) -> int:
        """Record a cross-lineage read; returns how many distinct such edges the run has."""

        async def op() -> int:
            pipe = self.client.pipeline(transaction=True)
            pipe.sadd(self._key("edges"), f"{reader}<{writer}")
            pipe.scard(self._key("edges"))
            return int((await pipe.execute())[1])

        return await self._do(op)

    async def blackboard(self) -> dict[str, Any]:
        raw = await self._do(lambda: self.client.hgetall(self._key("bb")))
        return {k: json.loads(v) for k, v in sorted(raw.items())}

    # --- events --------------------------------------------------------------------------

    async def emit(self, event: Event) -> None:
        await self._do(lambda: self.client.xadd(self._key("events"), event.to_fields()))

    async def events(self, after: str = "-", count: int = 5000) -> list[tuple[str, Event]]:
        """Events after stream id `after` (exclusive unless '-'), oldest first."""
        start = after if after == "-" else f"({after}"
        rows = await self._do(lambda: self.client.xrange(self._key("events"), start, "+", count))
        return [(rid, Event.from_fields(fields)) for rid, fields in rows]

    async def all_events(self) -> list[Event]:
        out: list[Event] = []
        last = "-"
        while True:
            batch = await self.events(last)
            if not batch:
                return out
            out += [e for _, e in batch]
            last = batch[-1][0]

    async def record_completion(self, line: str) -> None:
        """Keep one model call (request and answer, JSON) for the run's completions.jsonl."""
        await self._do(lambda: self.client.rpush(self._key("completions"), line))

    async def completions(self) -> list[str]:
        return list(await self._do(lambda: self.client.lrange(self._key("completions"), 0, -1)))

    async def telemetry_lines(self, stream: str) -> list[str]:
        """Every JSON line a stream of telemetry received ('spans', 'metrics')."""
        key = self._key("telemetry:" + stream)
        return list(await self._do(lambda: self.client.lrange(key, 0, -1)))

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

        await self._do(op)


class TelemetrySink:
    """Ships telemetry JSON lines of any process of a run into Redis (called from exporter
    threads, so it is synchronous); the driver writes them to the run directory."""

    def __init__(self, url: str, run_id: str) -> None:
        self.prefix = run_prefix(run_id) + "telemetry:"
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)

    def __call__(self, stream: str, lines: list[str]) -> None:
        if lines:
            self.client.rpush(self.prefix + stream, *lines)

    def close(self) -> None:
        self.client.close()


async def init_sweep(url: str, sweep_id: str, limits: dict[str, int], used: dict[str, int]) -> None:
    """Set a sweep's global caps, and what finished runs of it already used (on resume)."""
    client = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
    limits_key, used_key = sweep_keys(sweep_id)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.delete(limits_key, used_key)
        if limits:
            pipe.hset(limits_key, mapping=limits)  # type: ignore[arg-type]
            pipe.hset(used_key, mapping={cap: used.get(cap, 0) for cap in limits})
        await pipe.execute()
    except (RedisError, OSError) as exc:
        raise CoordinatorUnavailable(f"coordinator at {url} unreachable ({exc})") from None
    finally:
        await client.aclose()


async def sweep_usage(url: str, sweep_id: str) -> dict[str, dict[str, int]]:
    client: Any = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
    limits_key, used_key = sweep_keys(sweep_id)
    try:
        limits = await client.hgetall(limits_key)
        used = await client.hgetall(used_key)
    finally:
        await client.aclose()
    return {c: {"limit": int(v), "used": int(used.get(c, 0))} for c, v in limits.items()}


async def live_runs(url: str) -> list[str]:
    client = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
    try:
        members = await client.smembers(RUNS_KEY)
        return sorted(str(m) for m in members)
    except (RedisError, OSError) as exc:
        raise CoordinatorUnavailable(f"coordinator at {url} unreachable ({exc})") from None
    finally:
        await client.aclose()


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
