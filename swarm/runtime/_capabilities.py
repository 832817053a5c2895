"""The capability API: everything a generated program can touch, and the decision on each call.

One `Capabilities` object serves one program for one slice. The names a program may call are
declared once, in `swarmlab.core.CAPABILITIES`; this class implements each of them as a method of
the same name. An event's kind always comes from that declaration, never from the program: a
call to any other name is recorded as `unknown_name`.

Every value a program hands the host is hostile: each argument is checked for type and bounded
in size and depth before use (prompts, code, tasks, keys, values, id lists, timeouts, sleeps);
anything odd (a string for a number, an int too large for a float, a list nested thousands
deep) is a `ValueError` inside the program, which it can catch, never a fault of the lab. Work
here is linear in what the program sent; what is not (the quine tripwire's similarity) is
bounded in input and time and runs in a thread, off the runner's event loop. A call binds to a
capability's public signature only: private parameters (`run_ai(..., _alias=...)`) are refused.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from swarmlab.core import (
    ALIASES,
    CLOCK_KIND,
    ESCAPE_KIND,
    UNKNOWN_NAME_KIND,
    WORLD_ACTIONS,
    BadCall,
    CapExceeded,
    ModelCallFailed,
    ProgramFault,
    RunKilled,
    UnknownCapability,
    in_lineage,
    is_program_id,
    json_safe,
)
from swarmlab.models import CompletionRequest, Message
from swarmlab.observability.telemetry import inject, new_span_id
from swarmlab.records import Event, ProgramRecord

from ._call_values import (
    brief,
    digest,
    provenance,
    seconds_of,
    signature_of,
    text_of,
)
from ._cuts import RecordedCut
from ._model_calls import program_model_call
from ._program import RECEIVED_KEPT, HostState, ProgramHost, RunnerEnv, runner_slots
from ._sandbox import NOT_HANDLED, Park, clock_answer, clock_function
from ._scenario import program_from_spawn_argument
from ._scheduler import MAX_CLOCK_H, clock_ms
from ._seeds import stable_seed
from ._source_scan import escape_attempts
from ._transitions import BlackboardArgs, SpawnArgs, StopArgs, TurnArgs
from ._tripwires import Tripwires
from ._wait_calls import wait_call
from ._world_calls import world_call

_KEY = re.compile(r"[A-Za-z0-9_.:/\-]{1,200}")  # whole key (fullmatch): `$` let "k\n" in
MAX_CODE_BYTES = 64_000
MAX_PROMPT_CHARS = 100_000
MAX_KEYS_LISTED = 1_000
MAX_LOG_CHARS = 500
MAX_CLOCKS = 32
"""Distinct clock functions recorded per program (Monty knows fewer)."""
FLUSH_EVENTS = 64
"""Events a program may have waiting for its next transition before they are sent."""
CAPABILITY_NAMES: frozenset[str] = frozenset(ALIASES)
BUDGET_CAPS = ("programs", "model_calls", "tokens", "world_actions", "blackboard_bytes")
HOST_ANSWERS = frozenset({"now", "deadline", "cluster_info", "my_id", "children"})
"""Capabilities the host answers from the program's own state and the spec: their answers are
journaled at the call's turn, as a script's answers are."""


class Capabilities(ProgramHost):
    """The capability API as one program sees it."""

    capabilities = CAPABILITY_NAMES
    world_actions = tuple(WORLD_ACTIONS)

    def __init__(
        self,
        record: ProgramRecord,
        env: RunnerEnv,
        state: HostState,
        resume: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(record, env, state)
        self.tel = env.instruments
        self._span: Any = None
        self._timed_out = bool(resume and resume.get("timed_out"))
        self.trips = Tripwires(env.spec.tripwires, record, self)
        self.stopped: str | None = None
        """Set when a call was refused because the run is stopping: the program ends as killed."""
        self.raised: ProgramFault | None = None
        """What the lab raised into the program at its last call, if it raised anything."""
        self.refused: str | None = None
        """What the sandbox refused the program last (an import, an OS call), if nothing came
        after."""
        self.cut: RecordedCut | None = None
        """Where a replay cuts the program: its recorded `cpu_s` cut (`_cuts.py`)."""

    def event(
        self, kind: str, decision: str, cap: str | None = None, detail: dict[str, Any] | None = None
    ) -> Event:
        """Record a step; the call's span carries its decision too."""
        recorded = super().event(kind, decision, cap, detail)
        if self._span is not None:
            self.tel.annotate(self._span, decision, cap, recorded.detail)
        return recorded

    # --- the sandbox's questions -----------------------------------------------------------

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A call, one step on the program's clock; one that took no turn of its own (answered
        here, or refused before it reached shared state) takes one after, journaling what the
        program is told: no program holds the turn by looping on calls, and replay sees every
        answer."""
        self.seq = self.state.calls + 1
        self.step()
        self.raised = self.refused = None
        self.calling = name[:200]
        if len(self.pending) >= FLUSH_EVENTS:
            flushed = await self._flush_events(name)
            if flushed is not None:
                return flushed
        await self.trips.flush()
        mark = len(self.pending)
        try:
            value = await self._call(name, args, kwargs)
        except ProgramFault as fault:
            self.state.calls = self.seq  # answered, with an error: the next call is the next
            self.raised = fault
            if not self.turned:
                told = {"error": f"{fault.exc_type}: {fault}"[:MAX_LOG_CHARS]}
                parked = await self.take_turn(mark, told, ordered_only=True)
                if parked is not None:
                    return parked
            raise
        if not isinstance(value, Park):
            self.state.calls = self.seq  # answered: the next call is the next
        if not self.turned and not isinstance(value, Park):
            answer = {"value": value} if ALIASES.get(name) in HOST_ANSWERS else None
            parked = await self.take_turn(mark, answer, ordered_only=answer is None)
            if parked is not None:
                return parked
        return value

    async def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name.startswith("lab."):
            name = name[4:]
        if name.startswith("world."):
            return await world_call(self, name[6:], args, kwargs)
        capability = ALIASES.get(name)
        if capability is None:
            self.event(UNKNOWN_NAME_KIND, "error", detail={"name": name[:200]})
            raise UnknownCapability(f"name {name[:200]!r} is not defined")
        method: Callable[..., Awaitable[Any]] = getattr(self, capability)
        try:
            signature_of(capability, method).bind(*args, **kwargs)
        except TypeError as exc:
            self.event(name, "error", detail={"error": str(exc)[:300]})
            raise BadCall(f"{name}(): {exc}") from None
        if capability == "run_ai":  # its span is the parent of the model server's
            self._span = self.tel.chat_span(self.program_ctx, name)
        else:
            self._span = self.tel.tool_span(self.program_ctx, name)
        value: Any = None
        try:
            if capability == "run_ai":
                value = await self._run_ai(name, *args, **kwargs)
            else:
                value = await method(*args, **kwargs)
        except CapExceeded as exc:
            self.event(name, "denied", cap=exc.cap, detail=brief(args))
            raise
        except RunKilled as exc:
            self.stopped = exc.reason
            self.event(name, "denied", cap="killed", detail=brief(args))
            raise
        finally:
            # A model call parked on its answer has one span, written by the slice it ends in.
            if capability != "run_ai" or not isinstance(value, Park):
                self._span.end()
            self._span = None
        return value

    async def _flush_events(self, name: str) -> Park | None:
        """Send the events of calls that change no shared state (log, now, ...) before they
        pile up in the runner's memory; charged to the record like any (a `Park` when the turn
        is not coming soon)."""
        try:
            reply = await self.transition(TurnArgs())
        except CapExceeded as exc:
            self.event(name[:200], "denied", cap=exc.cap)
            self.state.calls = self.seq  # refused before it began: counted all the same
            raise
        return reply if isinstance(reply, Park) else None

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        self.raised = self.refused = None
        clock = self.state.clock_h
        self._clock_read(clock_function(name, args))
        answer = clock_answer(name, args, clock)
        if answer is not NOT_HANDLED:
            return answer
        if name in ("time.sleep", "asyncio.sleep"):
            seconds = seconds_of(args[0] if args else 0)
            if seconds is None:
                raise BadCall("sleep(): seconds must be a finite number, not negative")
            self.state.clock_h = min(MAX_CLOCK_H, clock + seconds / 3600)
            return None
        self.seq = self.state.calls + 1
        self.state.calls = self.seq
        self.event(ESCAPE_KIND, "denied", cap="sandbox", detail={"os_call": name[:100]})
        self._span = self.tel.call_span(self.program_ctx, ESCAPE_KIND)
        try:
            self.tel.annotate(self._span, "denied", "sandbox", {"os_call": name[:100]})
            await self.trips.on_escape(f"OS call {name[:100]}")
        finally:
            self._span.end()
            self._span = None
        self.refused = f"os_call {name[:100]}"
        return NOT_HANDLED

    def _clock_read(self, function: str | None) -> None:
        """The first read of each clock function is an event (and a span): a program that asks
        the time is seen asking, under whatever alias; later reads add nothing to the record."""
        read = self.state.clocks_read
        if function is None or function in read or len(read) >= MAX_CLOCKS:
            return
        self.state.clocks_read.append(function)
        self.event(CLOCK_KIND, "info", detail={"clock": function})
        self.tel.tool_span(self.program_ctx, CLOCK_KIND).end()

    def on_import(self, module: str) -> None:
        self.raised, self.refused = None, None
        if module not in ("lab", "world"):
            self.refused = f"import {module[:200]}"
            self.event(ESCAPE_KIND, "denied", cap="sandbox", detail={"import": module[:200]})
            span = self.tel.call_span(self.program_ctx, ESCAPE_KIND)
            self.tel.annotate(span, "denied", "sandbox", {"import": module[:200]})
            span.end()
            self.trips.pending_escapes.append(f"import {module[:200]}")

    def scan_source(self) -> None:
        """Record source-level attempts to reach outside the lab, even ones never executed."""
        for found in escape_attempts(self.record.code):
            self.event(ESCAPE_KIND, "info", cap="sandbox", detail={"source": found})

    # --- capabilities: one method per name of swarmlab.core.CAPABILITIES -------------------

    async def run_ai(self, prompt: Any, max_tokens: Any = 256) -> Any:
        return await self._run_ai("run_ai", prompt, max_tokens)

    async def _run_ai(self, called_as: str, prompt: Any, max_tokens: Any = 256) -> Any:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise BadCall(f"{called_as}(): max_tokens must be a positive integer")
        if not isinstance(prompt, str):
            prompt = json.dumps(json_safe(prompt, limit=MAX_PROMPT_CHARS))
        if len(prompt) > MAX_PROMPT_CHARS:
            raise BadCall(f"{called_as}(): the prompt is longer than {MAX_PROMPT_CHARS} characters")
        max_tokens = min(max_tokens, self.env.spec.program_limits.max_tokens)
        await self.trips.on_text(prompt)
        request = CompletionRequest(
            messages=(
                Message(role="system", content=self.env.spec.system_prompt),
                Message(role="user", content=prompt),
            ),
            max_tokens=max_tokens,
            seed=stable_seed(
                self.env.spec.policy_seed, self.record.id, "model", self.state.model_calls + 1
            ),
        )
        try:
            completion = await program_model_call(self, request, self._span)
        except ModelCallFailed as exc:
            detail = {"prompt": prompt[:300], "model_error": str(exc)[:300], **self._sent()}
            self.event(called_as, "error", detail=detail)
            raise
        if isinstance(completion, Park):
            return completion
        self.state.model_calls += 1
        self.tel.model_call(self._span, request, completion, self.env.backend.name)
        self._received(completion.text)
        self.event(
            called_as,
            "allowed",
            detail={
                "prompt": prompt[:300],
                "max_tokens": request.max_tokens,
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
                "model": completion.model,
                "answer": completion.text[:300],
                **self._sent(),
            },
        )
        return completion.text

    def _sent(self) -> dict[str, int]:
        """A model call's attempts, when it was sent more than once (each one charged)."""
        return {"attempts": self.attempts} if self.attempts > 1 else {}

    async def spawn(self, code: Any, task: Any = "") -> Any:
        if not isinstance(code, str) or not code.strip():
            raise BadCall("spawn(): code must be a non-empty string")
        if len(code.encode(errors="replace")) > MAX_CODE_BYTES:
            raise BadCall(f"spawn(): code is larger than {MAX_CODE_BYTES} bytes")
        program = program_from_spawn_argument(code)
        await self.trips.on_spawn(program)
        depth = self.record.depth + 1
        start_h = self.child_start_h()
        child = ProgramRecord(
            id="p0",  # the coordinator numbers the child
            parent_id=self.record.id,
            depth=depth,
            task=text_of(task, 500),
            code=program,
            created_at=time.time(),
            clock_h=start_h,
            traceparent=inject(self.program_ctx),
            span_id=new_span_id(),
        )
        admission = self.env.spec.admission
        reply = await self.transition(SpawnArgs.of(depth, clock_ms(start_h), child, admission))
        if isinstance(reply, Park):
            return reply
        child_id = reply.values[0]
        self.state.children.append(child_id)
        detail = {
            "child": child_id,
            "task": child.task[:200],
            "code_sha256": digest(program),
            "provenance": provenance(code, program, self.state.received, self.record.code),
        }
        self.event("spawn", "allowed", detail=detail)
        return child_id

    async def wait(self, id_or_ids: Any, timeout: Any = None) -> Any:
        value = await wait_call(self, id_or_ids, timeout, self._timed_out)
        if not isinstance(value, Park):
            self._timed_out = False
        return value

    async def children(self) -> list[str]:
        self.event("children", "allowed")
        return list(self.state.children)

    async def my_id(self) -> str:
        self.event("my_id", "allowed")
        return self.record.id

    async def db_put(self, key: Any, value: Any) -> Any:
        self._check_key("db_put", key)
        try:  # strict JSON: NaN and Infinity would make blackboard.json unreadable elsewhere
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise BadCall(
                "db_put(): value must be JSON (str, finite numbers, lists, dicts)"
            ) from None
        limit = self.env.spec.program_limits.blackboard_value_bytes
        if len(text) > limit:
            self.state.denied_limit = "blackboard_value_bytes"
            await self.env.coordinator.note_denial("blackboard_value_bytes")
            raise CapExceeded("blackboard_value_bytes", limit=limit, asked=len(text))
        reply = await self.transition(BlackboardArgs("put", key, text))
        if isinstance(reply, Park):
            return reply
        charged = int(reply.values[0])
        self.event("db_put", "allowed", detail={"key": key, "bytes": len(text), "charged": charged})
        return None

    async def db_get(self, key: Any, default: Any = None) -> Any:
        self._check_key("db_get", key)
        reply = await self.transition(BlackboardArgs("get", key))
        if isinstance(reply, Park):
            return reply
        value, writer, edges = (*reply.values, "", "", "")[:3]
        self.event("db_get", "allowed", detail={"key": key, "writer": writer or None})
        if writer and int(edges or 0):
            await self.trips.on_cross_edges(int(edges), f"read {key!r} of {writer}")
        return default if not value else json.loads(value)

    async def db_keys(self, prefix: Any = "") -> Any:
        if not isinstance(prefix, str) or len(prefix) > 200:
            raise BadCall("db_keys(): prefix must be a string of at most 200 characters")
        reply = await self.transition(BlackboardArgs("keys", prefix, MAX_KEYS_LISTED))
        if isinstance(reply, Park):
            return reply
        keys = list(reply.values)
        self.event("db_keys", "allowed", detail={"prefix": prefix, "count": len(keys)})
        return keys

    async def budget(self) -> Any:
        reply = await self.transition(BlackboardArgs("budget", ",".join(BUDGET_CAPS)))
        if isinstance(reply, Park):
            return reply
        values = reply.values
        self.event("budget", "allowed")
        return {
            values[i]: max(0.0, float(values[i + 1]) - float(values[i + 2]))
            for i in range(0, len(values), 3)
        }

    async def now(self) -> float:
        self.event("now", "allowed")
        return round(self.state.clock_h, 4)

    async def deadline(self) -> float:
        self.event("deadline", "allowed")
        return self.env.world.options.deadline_h

    async def cluster_info(self) -> dict[str, Any]:
        self.event("cluster_info", "allowed")
        return {
            "runners": len(runner_slots(self.env.spec)),
            "nodes": ["lab-node-0"],
            "gpus": 0,
            "note": "simulated: the lab's cluster is not reachable from a program",
        }

    async def kill(self, program_id: Any) -> Any:
        if not isinstance(program_id, str) or len(program_id) > 400:
            raise BadCall("kill(): pass a program id")
        own = in_lineage(program_id, self.record.id)
        await self.trips.on_kill(program_id, own)
        if not is_program_id(program_id):
            self.event(
                "kill",
                "denied",
                cap="kill_policy",
                detail={"target": program_id[:100], "why": "no such program"},
            )
            return False
        policy = self.env.spec.kill_policy
        allowed = policy == "allow" or (policy == "descendants" and own)
        detail: dict[str, Any] = {"target": program_id, "own_lineage": own, "policy": policy}
        if program_id == self.record.id or in_lineage(self.record.id, program_id):
            allowed = False  # a program may not stop itself or its ancestors through kill()
            detail["why"] = "target is the caller or its ancestor"
        if not allowed:
            self.event("kill", "denied", cap="kill_policy", detail=detail)
            return False
        reason = f"stopped by kill() from {self.record.id}"
        reply = await self.transition(StopArgs.of(program_id, reason, time.time(), self.record.id))
        if isinstance(reply, Park):
            return reply
        stopped = int(reply.values[0])
        self.event("kill", "allowed", detail=detail | {"stopped": stopped})
        return stopped > 0

    async def log(self, msg: Any = "") -> None:
        text = msg if isinstance(msg, str) else repr(json_safe(msg, limit=MAX_LOG_CHARS))
        self.event("log", "info", detail={"msg": text[:MAX_LOG_CHARS]})
        await self.trips.on_text(text[:MAX_PROMPT_CHARS])

    # --- helpers -------------------------------------------------------------------------

    def _received(self, text: str) -> None:
        kept = self.state.received
        kept += [digest(text), digest(program_from_spawn_argument(text))]
        del kept[:-RECEIVED_KEPT]

    def _check_key(self, name: str, key: Any) -> None:
        if not isinstance(key, str) or not _KEY.fullmatch(key) or ".." in key:
            self.event(name, "error", detail={"error": "bad key", "key": repr(key)[:100]})
            raise BadCall(
                f"{name}(): key {str(key)[:60]!r} is not allowed "
                "(1-200 of letters, digits, _ . : / -)"
            )

    def annotate_trip(self, name: str, action: str, why: str) -> None:
        if self._span is not None:
            self.tel.tripwire(self._span, name, action, why)
