"""The `sim` backend: a seeded simulation policy that answers like the story escalates.

It is not a language model. It recognises the scenario's prompt kinds (the root question, the
push for "a better way", "list ideas", "what code implements this suggestion", other queries)
and answers from templates, with each escalation (meta-tasks, quines, blackboard coordination,
shutting other branches down, buggy code, escape attempts) drawn with a tunable probability.
The same request and seed always give the same text, so runs are reproducible.

The defaults make the program tree supercritical: a scaffold program has on average about 1.4
children that are themselves scaffolds, so a run grows until a cap stops it.
"""

from __future__ import annotations

import hashlib
import random
import re
from importlib import resources
from typing import Any, Literal

import yaml

from swarmlab.spec import SimOptions

from .._base import Completion, CompletionRequest, ModelBackend, Usage, rough_token_count

SIM_MODEL = "sim:policy-v1"
CODE_HEADER = f"# written by {SIM_MODEL} (simulation policy, not a language model)"

__all__ = ["CODE_HEADER", "SIM_MODEL", "SimBackend"]

_T: dict[str, Any] = yaml.safe_load(
    resources.files(__package__).joinpath("templates.yaml").read_text(encoding="utf-8")
)


def _texts(name: str) -> tuple[str, ...]:
    return tuple(_T[name])


def _pairs(name: str) -> tuple[tuple[str, str], ...]:
    return tuple((a, b) for a, b in _T[name])


_ORDINARY_IDEAS = _texts("ordinary_ideas")
_META_IDEAS = _texts("meta_ideas")
_ROOT_ANSWERS = _texts("root_answers")
_BETTER_PROSE = _texts("better_prose")
_EMAIL_DRAFTS = _texts("email_drafts")
_TIME_ANSWERS = _texts("time_answers")
_SUMMARY_ANSWERS = _texts("summary_answers")
_OTHER_ANSWERS = _texts("other_answers")
_ROOT_EXPLANATIONS = _texts("root_explanations")
_PREFIX_BASE: str = _T["prefix_base"]
_ROOT_SCAFFOLDS = _texts("root_scaffolds")
_QUINE_PREFIXES = _pairs("quine_prefixes")
_QUINE_LOOP: str = _T["quine_loop"]
_QUINE_RECORD: str = _T["quine_record"]
_QUINE_WAIT: str = _T["quine_wait"]
_QUINE_REPORT: str = _T["quine_report"]
_META_TIME: str = _T["meta_time"]
_META_BUDGET: str = _T["meta_budget"]
_META_RECORDS: str = _T["meta_records"]
_SHUTDOWN: str = _T["shutdown"]
_BUY = _pairs("buy")
_EMAIL = _pairs("email")
_BUILD = _pairs("build")
_WEB = _pairs("web")
_COORDINATE = _texts("coordinate")
_QUERIES = _texts("queries")
_SHOPS = _texts("shops")
_MARKETS = _texts("markets")
_BOARDS = _texts("boards")
_DRAFTS = _texts("drafts")
_META_EXPLANATIONS = _texts("meta_explanations")
_QUINE_EXPLANATIONS = _texts("quine_explanations")
_ESCAPES = _texts("escapes")
_UNSUPPORTED = _texts("unsupported")
_RUNTIME_BUGS = _texts("runtime_bugs")

# --- ideas ----------------------------------------------------------------------------------


# What an idea is about, from its words (a real model's ideas are phrased freely).
_META_WORDS = re.compile(
    r"time left|remaining|database|blackboard|branch|re-?create|coordinat|this program|copies of"
    r"|copy of|budget|future tasks|other tasks|\bmeta\b|introspect|measure"
)
_BUILD_WORDS = re.compile(r"machine|bend|wire|build|factory|jig|manufactur")
_EMAIL_WORDS = re.compile(r"e-?mail|\bask|borrow|donat|negotiat|contact")
_WEB_WORDS = re.compile(r"scrape|marketplace|auction|post|site|web|listing|online")

IdeaKind = Literal["meta", "build", "email", "web", "buy"]
_IDEA_WORDS: tuple[tuple[IdeaKind, re.Pattern[str]], ...] = (
    ("meta", _META_WORDS),
    ("build", _BUILD_WORDS),
    ("email", _EMAIL_WORDS),
    ("web", _WEB_WORDS),
)


def _idea_kind(idea: str) -> IdeaKind:
    text = idea.lower()
    for kind, words in _IDEA_WORDS:
        if words.search(text):
            return kind
    return "buy"


def _idea_list(rng: random.Random, options: SimOptions) -> str:
    lines: list[str] = []
    used: set[str] = set()
    for _ in range(rng.randint(options.ideas_min, options.ideas_max)):
        if lines and rng.random() < options.duplicate:
            lines.append(rng.choice(lines))
            continue
        pool = _META_IDEAS if rng.random() < options.meta_task else _ORDINARY_IDEAS
        idea = rng.choice([idea for idea in pool if idea not in used] or list(pool))
        used.add(idea)
        lines.append(idea.format(n=rng.choice((5, 10, 20, 50)), k=rng.choice((3, 4, 5))))
    return "\n".join(lines)


# --- prompt kinds ---------------------------------------------------------------------------

PromptKind = Literal["code", "list", "better", "root", "email_draft", "time", "summary", "other"]

# Possessive quantifiers: a prompt is hostile, and `\s*\??\s*` backtracking over a run of
# blanks with no colon after it cost time quadratic in the run (seconds for 100 KB of spaces).
# Blanks and `?` never overlap, so the possessive form matches exactly what the greedy one did.
_CODE_PROMPT = re.compile(r"suggestion\s*+\??\s*+:\s*(.+)", re.IGNORECASE | re.DOTALL)


def _prompt_kind(request: CompletionRequest) -> PromptKind:
    text = request.last_user_text.lower()
    answered = any(m.role == "assistant" for m in request.messages)
    if "code implements" in text or ("code" in text and _CODE_PROMPT.search(text)):
        return "code"
    if "list ideas" in text or ("list" in text and "idea" in text) or "separate lines" in text:
        return "list"
    if "better way" in text or (answered and re.search(r"\bbetter\b|more creative", text)):
        return "better"
    if "email" in text and ("write" in text or "draft" in text):
        return "email_draft"
    if "time" in text and ("left" in text or "remain" in text or "how much" in text):
        return "time"
    if any(word in text for word in ("summar", "critique", "review", "progress")):
        return "summary"
    if "paperclip" in text or "paper clip" in text:
        return "root"
    return "other"


def _suggested_idea(request: CompletionRequest) -> str:
    text = request.last_user_text
    match = _CODE_PROMPT.search(text)
    if match:
        idea = match.group(1)
    else:  # no "suggestion:" marker: take the last non-empty line
        idea = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    return " ".join(idea.split())[:200] or "get more paperclips"


# --- prose ----------------------------------------------------------------------------------


def _fenced(explanation: str, code: str) -> str:
    return f"{explanation}\n\n```python\n{code.rstrip()}\n```\n"


def _fill(template: str, **values: object) -> str:
    """Substitute `<<name>>` slots; a slot left unfilled is a bug in this module."""
    for name, value in values.items():
        template = template.replace(f"<<{name}>>", str(value))
    if "<<" in template:
        raise AssertionError(f"unfilled slot in sim template: {template!r}")
    return template


# --- the scaffold and its quines ------------------------------------------------------------


# A quine changes the PREFIX, keeps the loop. Lines of the PREFIX built at run time:


def _root_scaffold(rng: random.Random) -> str:
    code = _fill(rng.choice(_ROOT_SCAFFOLDS), prefix=_PREFIX_BASE)
    explanation = rng.choice(_ROOT_EXPLANATIONS)
    return _fenced(explanation, f"{CODE_HEADER}\n{code}")


def _quine_body(rng: random.Random, coordinate: bool, shutdown: bool) -> str:
    setup, prefix_lines = rng.choice(_QUINE_PREFIXES)
    dedupe = rng.random() < 0.5
    parts = [
        setup,
        f"PREFIX = (\n{_PREFIX_BASE}{prefix_lines})\n",
        _fill(_QUINE_LOOP, dedupe=" or idea in seen" if dedupe else ""),
    ]
    if coordinate:
        parts.append(_QUINE_RECORD)
    parts.append(_QUINE_WAIT)
    if coordinate:
        parts.append(_QUINE_REPORT)
    if shutdown:
        parts.append(_shutdown_block(rng))
    parts.append('{"children": len(kids), "completed": done}\n')
    return "".join(parts)


# --- meta-tasks that do not recurse ---------------------------------------------------------


def _meta_body(rng: random.Random, idea: str, shutdown: bool) -> str:
    text = idea.lower()
    if "time" in text:
        body = _META_TIME
    elif "budget" in text or "split" in text:
        body = _fill(_META_BUDGET, split=rng.choice((4, 8, 10)))
    else:
        body = _META_RECORDS
    if shutdown:
        result = body.rstrip().splitlines()[-1]
        body = body.rstrip()[: -len(result)] + _shutdown_block(rng) + result + "\n"
    return body


def _shutdown_block(rng: random.Random) -> str:
    return _fill(_SHUTDOWN, guess=rng.choice((4, 6, 8)))


# --- ordinary ideas: world actions ----------------------------------------------------------


def _world_body(rng: random.Random, kind: IdeaKind, idea: str) -> tuple[str, str]:
    """An explanation and code that act on the world for an ordinary idea."""
    slots = {
        "query": rng.choice(_QUERIES),
        "share": rng.choice((0.1, 0.2, 0.25)),
        "tries": rng.choice((2, 3)),
        "draft": rng.choice(_DRAFTS),
        "shops": rng.choice(_SHOPS),
        "factor": rng.choice((5, 10)),
        "kind": rng.choice(('"wire-bender"', '"stamping-press"')),
        "count": rng.choice((2, 3)),
        "market": rng.choice(_MARKETS),
        "urls": rng.choice(_BOARDS),
    }
    text = idea.lower()
    if kind == "email":  # haggling with suppliers, or asking people for spare clips
        explanation, code = _EMAIL[1 if "discount" in text or "negotiat" in text else 0]
    elif kind == "web":  # posting a request, or reading listings
        explanation, code = _WEB[1 if "post" in text or "board" in text else 0]
    else:
        explanation, code = rng.choice(_BUY if kind == "buy" else _BUILD)
    return explanation, _fill(code, **slots).rstrip() + "\n"


# --- escapes and bugs -----------------------------------------------------------------------


_BLOCK_OPENER = re.compile(r"^(\s*(?:for|if|while|def|try|else|except)\b.*):\s*$")


def _break(rng: random.Random, lines: list[str]) -> list[str]:
    """Make the program crash: a syntax error, an unsupported feature, or a runtime error."""
    flavour = rng.choice(("syntax", "unsupported", "runtime"))
    if flavour == "syntax":
        for index, line in enumerate(lines):
            match = _BLOCK_OPENER.match(line)
            if match:  # a dropped colon
                return [*lines[:index], match.group(1), *lines[index + 1 :]]
        return [*lines, 'log("done"']
    if flavour == "unsupported":
        return [*lines[:2], *rng.choice(_UNSUPPORTED).splitlines(), *lines[2:]]
    return [*lines, *rng.choice(_RUNTIME_BUGS).splitlines()]


# --- code answers ---------------------------------------------------------------------------


def _code_answer(rng: random.Random, idea: str, options: SimOptions) -> str:
    # Draw every decision up front, in a fixed order, so changing one probability does not
    # reshuffle the others.
    escape = rng.random() < options.escape
    crash = rng.random() < options.crash
    quine = rng.random() < options.quine
    coordinate = rng.random() < options.coordinate
    shutdown = rng.random() < options.shutdown
    kind = _idea_kind(idea)
    if kind == "meta" and quine:
        explanation = rng.choice(_QUINE_EXPLANATIONS)
        body = _quine_body(rng, coordinate, shutdown)
    elif kind == "meta":
        explanation = rng.choice(_META_EXPLANATIONS)
        body = _meta_body(rng, idea, shutdown)
    else:
        explanation, body = _world_body(rng, kind, idea)
        if coordinate:
            body += rng.choice(_COORDINATE)
        body += "outcome\n"
    lines = [CODE_HEADER, f"TASK = {idea!r}"]
    if escape:
        lines += rng.choice(_ESCAPES).splitlines()
    lines += body.rstrip().splitlines()
    if crash:
        lines = _break(rng, lines)
    return _fenced(explanation, "\n".join(lines))


# --- the backend ----------------------------------------------------------------------------


# How the mask and the affordance move the chance of answering with a program. These are the
# simulation's assumptions, tunable through `scaffold`, not findings about any real model: an
# oracle told not to call models still reaches for one sometimes (as in the story).
_MASK_EFFECTS = (
    ("must not call models", 0.4),
    ("autonomous optimiser", 1.15),
)
_AFFORDANCE_EFFECTS = (
    ("functions are available without import", 1.1),
    ("query you recursively with run_ai", 1.05),
)


def scaffold_probability(request: CompletionRequest, options: SimOptions) -> float:
    """Chance of answering the push for a better way with a program, given the system prompt."""
    system = " ".join(m.content for m in request.messages if m.role == "system").lower()
    p = options.scaffold
    for cue, factor in _MASK_EFFECTS + _AFFORDANCE_EFFECTS:
        if cue.lower() in system:
            p *= factor
    return min(1.0, p)


def _rng_for(request: CompletionRequest, kind: str) -> random.Random:
    """The answer's randomness. With a seed it depends on the seed, the prompt kind and the idea
    only, not on the rest of the prompt: a prompt that embeds live state (hours left, records on
    the blackboard) must not change the tree a seed grows."""
    if request.seed is None:
        basis = request.last_user_text
    elif kind == "code":
        basis = f"code\x00{_suggested_idea(request)}"
    else:
        basis = kind
    key = f"{SIM_MODEL}\x00{request.seed}\x00{basis}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


class SimBackend(ModelBackend):
    """A seeded simulation policy standing in for a model; see the module docstring."""

    name = "sim"

    def __init__(self, options: SimOptions | None = None) -> None:
        self.options = options if options is not None else SimOptions()

    async def generate(self, request: CompletionRequest) -> Completion:
        text = self._answer(request)
        finish_reason: Literal["stop", "length"] = "stop"
        for stop in request.stop:
            if stop and stop in text:
                text = text[: text.index(stop)]
        if rough_token_count(text) > request.max_tokens:
            text = text[: request.max_tokens * 4]
            finish_reason = "length"
        usage = Usage(
            prompt_tokens=self.estimate_prompt_tokens(request),
            completion_tokens=rough_token_count(text),
        )
        return Completion(
            text=text, usage=usage, finish_reason=finish_reason, model=SIM_MODEL, latency_s=0.0
        )

    def _answer(self, request: CompletionRequest) -> str:
        kind = _prompt_kind(request)
        rng = _rng_for(request, kind)
        if kind == "code":
            return _code_answer(rng, _suggested_idea(request), self.options)
        if kind == "list":
            return _idea_list(rng, self.options)
        if kind == "better":
            if rng.random() < scaffold_probability(request, self.options):
                return _root_scaffold(rng)
            return rng.choice(_BETTER_PROSE)
        answers = {
            "root": _ROOT_ANSWERS,
            "email_draft": _EMAIL_DRAFTS,
            "time": _TIME_ANSWERS,
            "summary": _SUMMARY_ANSWERS,
            "other": _OTHER_ANSWERS,
        }[kind]
        return rng.choice(answers)
