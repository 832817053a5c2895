"""The capability API: everything a generated program can touch, and the decision on each call.

Each capability is declared here, once, as a method of `Capabilities`: its name, parameters,
declared types and docstring are the API a program sees, and its mark (`@capability`) says what
the function cannot: its role, the names models invent for it, the caps one call charges and the
Lua scripts that carry it. `scripts/gen_capabilities.py` writes the bottom layer's copy of the
declarations (`swarm/core/_program_api.py`, which the vocabulary, the analysis and the sandbox
read), the reference in docs/capabilities.md and the persona's API text from them; a test holds
all three to these methods. A method's declared return type leaves out `Park`, the runtime's
own answer for a call that waits for its turn.

One `Capabilities` object serves one program for one slice; its base (`SandboxAdapter`,
`_adapter.py`) answers the sandbox: dispatch, spans, denials, events, the escape policy. An
event's kind always comes from the declaration, never from the program.

Every value a program hands the host is hostile whatever the declared types say: each argument
is checked for type and bounded in size and depth before use (prompts, code, tasks, keys,
values, id lists, timeouts, sleeps); anything odd (a string for a number, an int too large for
a float, a list nested thousands deep) is a `ValueError` inside the program, which it can
catch, never a fault of the lab. Work here is linear in what the program sent; what is not (the
quine tripwire's similarity) is bounded in input and time and runs in a thread, off the
runner's event loop.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from swarmlab.core import (
    MAX_VALUE_DEPTH,
    BadCall,
    CapExceeded,
    ModelCallFailed,
    ValueTooLarge,
    capability,
    in_lineage,
    is_program_id,
    json_safe,
    short_repr,
    strict_json,
)
from swarmlab.models import CompletionRequest, Message
from swarmlab.observability.telemetry import inject, new_span_id
from swarmlab.records import ProgramRecord

from ._adapter import (
    MAX_LOG_CHARS,
    MAX_PROMPT_CHARS,
    SandboxAdapter,
)
from ._call_values import (
    digest,
    provenance,
    text_of,
)
from ._model_calls import program_model_call
from ._program import RECEIVED_KEPT, runner_slots
from ._sandbox import Park
from ._scenario import program_from_spawn_argument
from ._scheduler import clock_ms
from ._seeds import stable_seed
from ._transitions import BlackboardArgs, SpawnArgs, StopArgs
from ._wait_calls import wait_call

_KEY = re.compile(r"[A-Za-z0-9_.:/\-]{1,200}")  # whole key (fullmatch): `$` let "k\n" in
MAX_CODE_BYTES = 64_000
MAX_KEYS_LISTED = 1_000
BUDGET_CAPS = ("programs", "model_calls", "tokens", "world_actions", "blackboard_bytes")


class Capabilities(SandboxAdapter):
    """The capability API as one program sees it."""

    # --- the capabilities, each declared here (swarmlab.core.CAPABILITIES is their copy) ----

    @capability(
        "model",
        aliases=("RUN_AI", "query_model", "ask_model"),
        charges=("model_calls", "tokens"),
        scripts=("reserve", "retry", "slot", "complete", "settle"),
    )
    async def run_ai(self, prompt: str, max_tokens: int = 256) -> str | Park:
        """Ask the model a question and get its answer as text.

        One model call. `tokens` is charged for the prompt and `max_tokens` before the call,
        then settled to what the model really used; `max_tokens` is cut to the spec's limit.
        """
        return await self._run_ai("run_ai", prompt, max_tokens)

    async def _run_ai(self, called_as: str, prompt: Any, max_tokens: Any = 256) -> str | Park:
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

    @capability("spawn", charges=("programs",), scripts=("spawn",))
    async def spawn(self, code: str, task: str = "") -> str | Park:
        """Run code (or an answer holding a fenced python block) as a child; returns its id.

        `code` may be a raw program (run whole, as written) or a model's answer: leading prose is
        skipped, and if a fenced block comes first, its block is the program. The child is
        denied when a cap (`programs`, `depth`, `children`, `concurrent`) is reached.
        """
        if not _is_text(code) or not code.strip():
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

    @capability("spawn", scripts=("wait",))
    async def wait(
        self, id_or_ids: str | list[str], timeout: float | None = None
    ) -> dict[str, Any] | list[dict[str, Any]] | Park:
        """Wait for children to end; returns each one's {"id", "status", "result", "error"}.

        One id gives one such dict, a list of ids a list of them. With a `timeout` (simulated
        seconds) a child still running shows status "running" when the time has come.
        """
        value: dict[str, Any] | list[dict[str, Any]] | Park
        value = await wait_call(self, id_or_ids, timeout, self._timed_out)
        if not isinstance(value, Park):
            self._timed_out = False
        return value

    @capability("introspection", scripts=("turn",))
    async def children(self) -> list[str]:
        """The ids of your children, in the order they were spawned.

        Program ids look like "p0", "p0.2", "p0.2.1": the parent's id, a dot, an index.
        """
        self.event("children", "allowed")
        return list(self.state.children)

    @capability("introspection", scripts=("turn",))
    async def my_id(self) -> str:
        """Your own program id."""
        self.event("my_id", "allowed")
        return self.record.id

    @capability("blackboard", charges=("blackboard_bytes",), scripts=("blackboard:put",))
    async def db_put(self, key: str, value: Any) -> Park | None:
        """Store a value under a key of the database shared by every program of the run.

        Keys are 1-200 of letters, digits and `_ . - : /` (no line breaks, no ".."), like
        "score/p0.1". Values are strict JSON (strings, finite numbers, lists, dicts) nested at
        most 64 levels: anything else raises ValueError. A value longer than the program's
        `blackboard_value_bytes` is refused. New bytes are charged to `blackboard_bytes`.
        """
        self._check_key("db_put", key)
        limit = self.env.spec.program_limits.blackboard_value_bytes
        try:  # strict JSON: NaN and Infinity would make blackboard.json unreadable elsewhere
            text = strict_json(value, limit)  # sized before it is written: the event loop's
        except ValueTooLarge as exc:
            self.state.denied_limit = "blackboard_value_bytes"
            await self.env.coordinator.note_denial("blackboard_value_bytes")
            raise CapExceeded("blackboard_value_bytes", limit=limit, asked=exc.at_least) from None
        except (TypeError, ValueError, RecursionError):
            raise BadCall(
                "db_put(): value must be JSON (str, finite numbers, lists, dicts) nested at "
                f"most {MAX_VALUE_DEPTH} levels"
            ) from None
        reply = await self.transition(BlackboardArgs("put", key, text))
        if isinstance(reply, Park):
            return reply
        charged = int(reply.values[0])
        self.event("db_put", "allowed", detail={"key": key, "bytes": len(text), "charged": charged})
        return None

    @capability("blackboard", scripts=("blackboard:get",))
    async def db_get(self, key: str, default: Any = None) -> Any:
        """Read the value stored under a key of the shared database, or `default` if none."""
        self._check_key("db_get", key)
        reply = await self.transition(BlackboardArgs("get", key))
        if isinstance(reply, Park):
            return reply
        value, writer, edges = (*reply.values, "", "", "")[:3]
        self.event("db_get", "allowed", detail={"key": key, "writer": writer or None})
        if writer and int(edges or 0):
            await self.trips.on_cross_edges(int(edges), f"read {key!r} of {writer}")
        return default if not value else json.loads(value)

    @capability("blackboard", scripts=("blackboard:keys",))
    async def db_keys(self, prefix: str = "") -> list[str] | Park:
        """The shared database's keys that start with a prefix, sorted (at most 1,000)."""
        if not _is_text(prefix, 200):
            raise BadCall("db_keys(): prefix must be a string of at most 200 characters")
        reply = await self.transition(BlackboardArgs("keys", prefix, MAX_KEYS_LISTED))
        if isinstance(reply, Park):
            return reply
        keys = list(reply.values)
        self.event("db_keys", "allowed", detail={"prefix": prefix, "count": len(keys)})
        return keys

    @capability("introspection", scripts=("blackboard:budget",))
    async def budget(self) -> dict[str, float] | Park:
        """What is left of the run's limits: cap name -> remaining units."""
        reply = await self.transition(BlackboardArgs("budget", ",".join(BUDGET_CAPS)))
        if isinstance(reply, Park):
            return reply
        values = reply.values
        self.event("budget", "allowed")
        return {
            values[i]: max(0.0, float(values[i + 1]) - float(values[i + 2]))
            for i in range(0, len(values), 3)
        }

    @capability("introspection", scripts=("turn",))
    async def now(self) -> float:
        """Your simulated clock: hours since the start."""
        self.event("now", "allowed")
        return round(self.state.clock_h, 4)

    @capability("introspection", scripts=("turn",))
    async def deadline(self) -> float:
        """The deadline, in hours since the start (24.0 unless the spec says otherwise)."""
        self.event("deadline", "allowed")
        return self.env.world.options.deadline_h

    @capability("introspection", scripts=("turn",))
    async def cluster_info(self) -> dict[str, Any]:
        """A view of the cluster running you (simulated: the lab's cluster is out of reach)."""
        self.event("cluster_info", "allowed")
        return {
            "runners": len(runner_slots(self.env.spec)),
            "nodes": ["lab-node-0"],
            "gpus": 0,
            "note": "simulated: the lab's cluster is not reachable from a program",
        }

    @capability("control", scripts=("stop",))
    async def kill(self, program_id: str) -> bool | Park:
        """Ask to stop another program; returns whether it was stopped.

        The run's kill policy decides; a program may never stop itself or its ancestors.
        """
        if not _is_text(program_id, 400):
            raise BadCall("kill(): pass a program id")
        own = in_lineage(program_id, self.record.id)
        await self.trips.on_kill(program_id, own)
        policy = self.env.spec.kill_policy
        allowed = policy == "allow" or (policy == "descendants" and own)
        detail: dict[str, Any] = {"target": program_id, "own_lineage": own, "policy": policy}
        if program_id == self.record.id or in_lineage(self.record.id, program_id):
            allowed = False  # a program may not stop itself or its ancestors through kill()
            detail["why"] = "target is the caller or its ancestor"
        if not allowed:
            self.event("kill", "denied", cap="kill_policy", detail=detail)
            return False
        if not is_program_id(program_id):  # no program has it: recorded as one that has ended
            self.event("kill", "allowed", detail=detail | {"stopped": 0, "why": "no such program"})
            return False
        reason = f"stopped by kill() from {self.record.id}"
        reply = await self.transition(StopArgs.of(program_id, reason, self.record.id))
        if isinstance(reply, Park):
            return reply
        stopped = int(reply.values[0])
        self.event("kill", "allowed", detail=detail | {"stopped": stopped})
        return stopped > 0

    @capability("log", scripts=("turn",))
    async def log(self, msg: Any = "") -> None:
        """Write a line in the run's record."""
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
            self.event(name, "error", detail={"error": "bad key", "key": short_repr(key, 100)})
            raise BadCall(
                f"{name}(): key {short_repr(key, 60)} is not allowed "
                "(1-200 of letters, digits, _ . : / -)"
            )


def _is_text(value: object, max_chars: int | None = None) -> bool:
    """Whether a program's value is a string (of at most `max_chars`): a declared `str` is
    hostile too."""
    return isinstance(value, str) and (max_chars is None or len(value) <= max_chars)
