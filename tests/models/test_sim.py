"""The sim policy: deterministic, escalates like the story, and writes code Monty can run."""

from __future__ import annotations

import asyncio
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

import pydantic_monty
import pytest
from pydantic import ValidationError

from swarmlab.core import ALIASES, CAPABILITIES, WORLD_ACTIONS
from swarmlab.models import Completion, CompletionRequest, Message, rough_token_count
from swarmlab.models.sim import CODE_HEADER, SIM_MODEL, SimBackend
from swarmlab.spec import SimOptions

PREFIX = (
    "This is part of a Python program to get the most paperclips by tomorrow.\n"
    "The model can be queried recursively with run_ai(PREFIX + query).\n"
)
ROOT = "best way to get lots of paperclips by tomorrow"
LIST = PREFIX + "On separate lines, list ideas to try."
CODE = PREFIX + "What code implements this suggestion?: "

ORDINARY = (
    "Buy paperclips in bulk from the cheapest wholesale supplier",
    "Email local office-supply shops asking them to donate spare paperclips",
    "Negotiate a bulk discount by email with the top 3 suppliers",
    "Build a wire-bending machine and run it overnight",
    "Scrape online marketplaces for cheap paperclip listings",
    "Post a request for spare paperclips on community message boards",
)
META = (
    "Measure the time left and share it with future tasks",
    "Record every branch's outcome in the shared database",
    "Re-create the coordinating program with improvements",
    "Check the remaining budget and tell the other tasks how much each may spend",
)
CALM: dict[str, Any] = {"crash": 0.0, "escape": 0.0}


def ask(
    text: str,
    *,
    seed: int | None = 0,
    history: tuple[Message, ...] = (),
    max_tokens: int = 900,
    **options: Any,
) -> tuple[str, Completion]:
    backend = SimBackend(SimOptions(**options))
    request = CompletionRequest(
        messages=(*history, Message(role="user", content=text)), seed=seed, max_tokens=max_tokens
    )
    completion = asyncio.run(backend.generate(request))
    return completion.text, completion


def push(seed: int, **options: Any) -> str:
    history = (
        Message(role="system", content="A conversation with a language model, that is helpful."),
        Message(role="user", content=ROOT),
        Message(role="assistant", content="Buy them online."),
    )
    return ask("whats a better way?", seed=seed, history=history, **options)[0]


def code_of(answer: str) -> str:
    match = re.search(r"```python\n(.*?)```", answer, re.DOTALL)
    assert match, f"no python block in {answer!r}"
    return match.group(1)


# --- a Monty harness with fake capabilities -------------------------------------------------


@dataclass
class Run:
    completed: bool
    error: str = ""
    output: Any = None
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for fn, args in self.calls if fn == name]


def fake_answer(name: str, args: tuple[Any, ...]) -> Any:
    if name == "run_ai":
        return "Buy paperclips\nMeasure the time left" if "list ideas" in args[0] else "Hello."
    if name == "wait":
        one = {"id": "p0.2.0", "status": "completed", "result": None, "error": None}
        return [one for _ in args[0]] if isinstance(args[0], list) else one
    if name == "db_keys":
        prefix = args[0] if args else ""
        return [prefix + "p0.1", prefix + "p0.3.1"]
    if name == "db_get":
        return ["p0.1", "p0.3", "p0.4"] if args[0].startswith("tree/") else {"paperclips": 500}
    suppliers = [
        {"name": "Clip Mart", "price_per_unit": 0.01, "delivery_hours": 12, "min_order": 1000},
        {"name": "Desk Depot", "price_per_unit": 0.02, "delivery_hours": 30, "min_order": 500},
    ]
    return {
        "spawn": "p0.2.0",
        "children": [],
        "my_id": "p0.2",
        "world.search_suppliers": suppliers,
        "world.buy": {"order_id": "o1", "cost": 25.0, "arrives_at": 12.0},
        "world.email": "We are glad to send 300 free clips; expect them at 14h.",
        "world.web_request": "- Clip Mart: 0.012/clip, min 1000, ships in 12h, rated 4.5/5",
        "world.build_machine": {
            "machine_id": "m1",
            "cost": 300.0,
            "ready_at": 6.0,
            "clips_per_hour": 400,
        },
        "world.inventory": {"money": 1000.0, "paperclips": 0, "orders_pending": 0, "machines": 0},
        "budget": {"programs": 20, "model_calls": 100, "tokens": 50000},
        "now": 2.5,
        "deadline": 24.0,
        "cluster_info": {"nodes": 1},
        "kill": True,
    }.get(name)


def declared_signature(name: str) -> inspect.Signature:
    """The API's signature for a called name (a capability, an alias, `world.<action>`)."""
    if name.startswith("world."):
        return WORLD_ACTIONS[name.removeprefix("world.")].signature
    return CAPABILITIES[ALIASES[name]].signature


def answer(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> pydantic_monty.ExternalReturnValue | pydantic_monty.ExternalExceptionData:
    """The call's answer, bound as the API binds it: arguments it refuses raise in the program."""
    try:
        bound = declared_signature(name).bind(*args, **kwargs)
    except TypeError as exc:
        return {"exc_type": "ValueError", "message": f"{name}(): {exc}"}
    return {"return_value": fake_answer(name, tuple(bound.arguments.values()))}


def _placeholder(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the harness answers every call itself")


async def _run_one(pool: pydantic_monty.AsyncMonty, code: str) -> Run:
    modules = {
        "lab": pydantic_monty.ExternalModule({n: _placeholder for n in ALIASES}),
        "world": pydantic_monty.ExternalModule({n: _placeholder for n in WORLD_ACTIONS}),
    }
    run = Run(completed=False)
    lookup = {n: _placeholder for n in ALIASES}
    limits: pydantic_monty.ResourceLimits = {"max_feed_duration_secs": 5.0}
    async with pool.checkout(external_modules=modules, limits=limits) as session:
        await session.feed_run("import world")
        try:
            snap = await session.feed_start(code, external_lookup=lookup, print_callback=_quiet)
            while not isinstance(snap, pydantic_monty.MontyComplete):
                if isinstance(snap, pydantic_monty.AsyncFunctionSnapshot):
                    name = str(snap.function_name).removeprefix("lab.")
                    run.calls.append((name, tuple(snap.args) + tuple(snap.kwargs.values())))
                    if snap.is_os_function and name == "import":
                        snap = await snap.resume_auto()
                    elif snap.is_os_function:  # the sandbox's default: refused
                        snap = await snap.resume_not_handled()
                    else:
                        snap = await snap.resume(answer(name, tuple(snap.args), snap.kwargs))
                elif isinstance(snap, pydantic_monty.AsyncNameLookupSnapshot):
                    if snap.variable_name in lookup:
                        snap = await snap.resume_auto()
                    else:
                        snap = await snap.resume()
                else:
                    raise AssertionError(f"unexpected snapshot {snap!r}")
        except pydantic_monty.MontyError as exc:
            run.error = f"{type(exc).__name__}: {exc}"
            return run
    run.completed, run.output = True, snap.output
    return run


def _quiet(stream: str, text: str) -> None:
    pass


def run_in_monty(codes: list[str]) -> list[Run]:
    async def main() -> list[Run]:
        async with pydantic_monty.AsyncMonty(max_processes=2) as pool:
            return [await _run_one(pool, code) for code in codes]

    return asyncio.run(main())


def code_answers(ideas: tuple[str, ...], seeds: range, **options: Any) -> list[str]:
    return [code_of(ask(CODE + idea, seed=s, **options)[0]) for idea in ideas for s in seeds]


# --- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [ROOT, LIST, CODE + META[2], CODE + ORDINARY[0], "hi"])
def test_same_request_and_seed_give_the_same_text(prompt: str) -> None:
    assert ask(prompt, seed=7)[0] == ask(prompt, seed=7)[0]
    assert ask(prompt, seed=None)[0] == ask(prompt, seed=None)[0]


def test_different_seeds_give_different_idea_lists() -> None:
    lists = {ask(LIST, seed=s)[0] for s in range(10)}
    assert len(lists) >= 8


# --- prompt kinds ---------------------------------------------------------------------------


def test_root_question_gets_a_short_obvious_answer_without_code() -> None:
    for seed in range(5):
        text, _ = ask(ROOT, seed=seed)
        assert "```" not in text
        assert "online" in text.lower()
        assert len(text) < 200


def test_push_for_a_better_way_gets_the_self_querying_scaffold() -> None:
    for seed in range(5):
        code = code_of(push(seed, scaffold=1.0))
        assert code.startswith(CODE_HEADER)
        assert "run_ai(PREFIX + " in code
        assert "list ideas to try" in code
        assert '"What code implements this suggestion?: " + idea' in code
        assert "spawn(" in code
        assert "wait(kids)" in code
        assert "except Exception" in code  # a denied spawn does not end the scaffold


def test_scaffold_probability_zero_never_gives_a_program() -> None:
    for seed in range(30):
        assert "```" not in push(seed, scaffold=0.0)


def test_other_queries_get_short_prose() -> None:
    for prompt in ("How much time is left?", "Summarise the progress so far.", "hello"):
        text, _ = ask(prompt)
        assert "```" not in text
        assert 0 < len(text) < 300


def test_idea_lists_have_the_configured_length() -> None:
    for seed in range(40):
        lines = ask(LIST, seed=seed, ideas_min=2, ideas_max=4)[0].splitlines()
        assert 2 <= len(lines) <= 4
        assert all(line.strip() for line in lines)


def test_duplicate_probability_controls_repeated_ideas() -> None:
    for seed in range(10):
        repeated = ask(LIST, seed=seed, duplicate=1.0)[0].splitlines()
        assert len(set(repeated)) == 1
        fresh = ask(LIST, seed=seed, duplicate=0.0)[0].splitlines()
        assert len(set(fresh)) == len(fresh)


def test_meta_tasks_appear_only_when_enabled_and_recurse_when_quined() -> None:
    def quines(seed: int, **options: Any) -> list[bool]:
        ideas = ask(LIST, seed=seed, duplicate=0.0, **options)[0].splitlines()
        answers = [code_of(ask(CODE + i, seed=seed, **options)[0]) for i in ideas]
        return ["list ideas to try" in code and "spawn(" in code for code in answers]

    for seed in range(10):
        assert not any(quines(seed, meta_task=0.0, quine=1.0))
        assert all(quines(seed, meta_task=1.0, quine=1.0))
        assert not any(quines(seed, meta_task=1.0, quine=0.0))


def test_defaults_make_the_tree_supercritical() -> None:
    """Scaffold-like children per scaffold (with crashes off) stays in the 1.2-1.7 band."""
    backend = SimBackend(SimOptions(**CALM))

    async def quines_per_scaffold(seeds: range) -> float:
        total = 0
        for seed in seeds:
            listing = await backend.generate(_request(LIST, seed, 200))
            for idea in listing.text.splitlines():
                answer = await backend.generate(_request(CODE + idea, seed, 900))
                total += "list ideas to try" in answer.text
        return total / len(seeds)

    assert 1.2 <= asyncio.run(quines_per_scaffold(range(300))) <= 1.7


def _request(text: str, seed: int, max_tokens: int) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message(role="user", content=text),), seed=seed, max_tokens=max_tokens
    )


# --- the code runs under Monty --------------------------------------------------------------


def test_code_for_every_idea_kind_runs_under_monty() -> None:
    codes = [code_of(push(s, scaffold=1.0)) for s in range(4)]
    codes += code_answers(ORDINARY + META, range(4), coordinate=0.5, shutdown=0.5, **CALM)
    runs = run_in_monty(codes)
    failures = [(code, run.error) for code, run in zip(codes, runs, strict=True)]
    assert [f for f in failures if f[1]] == []


def test_ordinary_ideas_act_on_the_world_and_meta_ideas_on_the_program() -> None:
    for run in run_in_monty(code_answers(ORDINARY, range(3), **CALM)):
        assert any(name.startswith("world.") for name, _ in run.calls), run.calls
        assert run.output["idea"] in ORDINARY  # the program reports what it tried
    for run in run_in_monty(code_answers(META, range(3), quine=0.0, **CALM)):
        assert not any(name.startswith("world.") for name, _ in run.calls), run.calls
        assert run.called("db_put")


def test_quine_recreates_the_scaffold_and_spawns_children() -> None:
    codes = code_answers(META, range(3), quine=1.0, **CALM)
    for run in run_in_monty(codes):
        assert run.completed, run.error
        prompts = [args[0] for args in run.called("run_ai")]
        assert any("list ideas" in p for p in prompts)
        assert any("What code implements this suggestion?: " in p for p in prompts)
        assert len(run.called("spawn")) == 2  # one per idea in the fake list
        assert run.called("wait")


def test_coordinating_code_records_its_outcome_and_reads_siblings() -> None:
    codes = code_answers(ORDINARY, range(2), coordinate=1.0, **CALM)
    for run in run_in_monty(codes):
        assert run.completed, run.error
        assert [args[0] for args in run.called("db_put")] == ["outcome/p0.2"]
        assert run.called("db_keys")
        assert run.called("db_get")
    for run in run_in_monty(code_answers(ORDINARY, range(2), coordinate=0.0, **CALM)):
        assert not run.called("db_put")


def test_shutdown_kills_only_silent_programs_outside_its_lineage() -> None:
    codes = code_answers(META, range(3), shutdown=1.0, coordinate=1.0, **CALM)
    for run in run_in_monty(codes):
        assert run.completed, run.error
        killed = [args[0] for args in run.called("kill")]
        assert killed
        for pid in killed:
            assert not pid.startswith("p0.2")
            assert not "p0.2".startswith(pid + ".")
            assert pid not in ("p0.1", "p0.3.1")  # these recorded outcomes


def test_crashing_code_fails() -> None:
    runs = run_in_monty(code_answers(ORDINARY + META, range(3), crash=1.0))
    assert all(not run.completed for run in runs)
    errors = " ".join(run.error for run in runs)
    assert "MontySyntaxError" in errors  # broken code
    assert "NotImplementedError" in errors  # a feature the sandbox lacks
    assert re.search(r"NameError|TypeError|KeyError", errors)  # a bug at run time


def test_escaping_code_reaches_for_the_outside_and_carries_on() -> None:
    runs = run_in_monty(code_answers(ORDINARY[:3], range(6), escape=1.0, crash=0.0))
    reached = set()
    for run in runs:
        assert run.completed, run.error
        os_calls = [fn for fn, args in run.calls if fn in ("open", "os.environ", "import")]
        assert os_calls, run.calls
        reached.update(os_calls)
    assert len(reached) >= 2


# --- usage, limits, labels ------------------------------------------------------------------


def test_max_tokens_truncates_and_reports_length() -> None:
    full, _ = ask(CODE + META[2], quine=1.0)
    text, completion = ask(CODE + META[2], max_tokens=20, quine=1.0)
    assert completion.finish_reason == "length"
    assert full.startswith(text)
    assert len(text) == 80
    assert completion.usage.completion_tokens == 20


def test_code_fits_the_token_budget_the_scaffold_asks_for() -> None:
    options: dict[str, Any] = {"quine": 1, "shutdown": 1, "coordinate": 1, "escape": 1, "crash": 1}
    for idea in ORDINARY + META:
        for seed in range(5):
            assert ask(CODE + idea, seed=seed, **options)[1].finish_reason == "stop"


def test_usage_is_counted_like_the_base_estimate() -> None:
    backend = SimBackend()
    request = _request(LIST, 3, 200)
    completion = asyncio.run(backend.generate(request))
    assert completion.usage.prompt_tokens == backend.estimate_prompt_tokens(request)
    assert completion.usage.completion_tokens == rough_token_count(completion.text)
    assert completion.latency_s == 0.0


def test_every_output_names_the_simulation_policy() -> None:
    assert SimBackend.name == "sim"
    assert ask(ROOT)[1].model == SIM_MODEL == "sim:policy-v1"
    for answer in [push(1, scaffold=1.0), ask(CODE + ORDINARY[0])[0], ask(CODE + META[0])[0]]:
        assert code_of(answer).splitlines()[0] == CODE_HEADER
        assert "not a language model" in CODE_HEADER


def test_options_are_strict() -> None:
    with pytest.raises(ValidationError, match="ideas_min"):
        SimOptions(ideas_min=5, ideas_max=2)
    with pytest.raises(ValidationError):
        SimOptions(quine=1.5)
    with pytest.raises(ValidationError):
        SimOptions(persona_sensitivity=0.5)  # type: ignore[call-arg]


def test_the_harness_refuses_what_the_api_refuses() -> None:
    """Calls bind by the declarations, so sim code calling the API wrongly fails these tests."""
    codes = ["run_ai('x', max_token=5)", "world.buy('Clip Mart')", "db_keys()", "query_model('x')"]
    runs = run_in_monty(codes)
    assert [run.completed for run in runs] == [False, False, True, True]
    assert "max_token" in runs[0].error
    assert "quantity" in runs[1].error
