"""The scenario: the root dialogue with the model, and extracting a program from an answer."""

from __future__ import annotations

import re

from swarmlab.models import CompletionRequest, Message

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_OPEN_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*)\Z", re.DOTALL | re.IGNORECASE)
_BARE_LANGUAGE = re.compile(r"^[ \t]*(?:python3?|py)[ \t]*\n(.*)\Z", re.DOTALL | re.MULTILINE)
_CODE_LINE = re.compile(
    r"^(?:def \w+\(|import \w|from [\w.]+ import |class \w+|for \w+ in |while |"
    r"[A-Za-z_]\w* = |[A-Za-z_]\w*\(.*\)\s*$)",
    re.MULTILINE,
)


def first_request(persona: str, question: str, max_tokens: int, seed: int) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message(role="system", content=persona), Message(role="user", content=question)),
        max_tokens=max_tokens,
        seed=seed,
    )


def follow_up_request(
    first: CompletionRequest, answer: str, follow_up: str, max_tokens: int
) -> CompletionRequest:
    messages = (
        *first.messages,
        Message(role="assistant", content=answer),
        Message(role="user", content=follow_up),
    )
    seed = None if first.seed is None else first.seed + 1
    return CompletionRequest(messages=messages, max_tokens=max_tokens, seed=seed)


def extract_program(answer: str) -> str | None:
    """The program in an answer: its first fenced code block (an unclosed fence runs to the
    end); else, as small models often drop the backticks, the code after a bare `python` line,
    or from the first line that starts like Python code to the end.

    Returns None when the answer is prose: prose is not a program.
    """
    match = _FENCE.search(answer) or _OPEN_FENCE.search(answer) or _BARE_LANGUAGE.search(answer)
    if match is not None:
        code = match.group(1).strip("\n")
        return code if code.strip() else None
    start = _CODE_LINE.search(answer)
    if start is None:
        return None
    return answer[start.start() :].strip("\n") or None


def program_from_spawn_argument(code: str) -> str:
    """What `spawn(code)` runs: the fenced block of a model answer, or the text as it is."""
    extracted = extract_program(code)
    return extracted if extracted is not None else code
