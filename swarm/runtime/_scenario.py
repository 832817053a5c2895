"""The scenario: the root dialogue with the model, and taking the program from an answer.

The same extraction serves the root dialogue and every `spawn(code)`: a program hands `spawn`
whatever a model answered, prose and fences included. The text is hostile; the scan is one pass
over its lines with linear-time checks.
"""

from __future__ import annotations

import itertools
import keyword
import re
import textwrap

from swarmlab.models import CompletionRequest, Message

from ._source_scan import source_lines


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
    """The program in a model's answer, or None when the answer is prose.

    Lines are read from the top. Blank lines, comments and prose are passed over; the first
    line that is none of these decides:
    - an opening code fence (```, ```python, ```py): the program is the block it opens, up to
      its closing fence (an unclosed fence runs to the end);
    - a bare `python` line, as small models write when they drop the backticks: what follows;
    - anything else: the program starts there (with the comments just above it) and runs to
      the end.

    A line counts as prose only when it cannot be the first line of a Python program (see
    `_is_prose`), so code is never cut short: a program that starts with `if`, `try`, a
    decorator or a docstring is taken whole. Fences in another language are skipped with
    their contents. One pass over the lines, each line checked in linear time.
    """
    lines = source_lines(answer)
    comments_from: int | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        fence = _FENCE_OPEN.fullmatch(line)
        if fence is not None:
            end = _closing_fence(lines, index + 1)
            if fence["language"].lower() in _PYTHON_FENCES:
                return _program(lines[index + 1 : end])
            index, comments_from = end + 1, None  # another language: skip the whole block
            continue
        if not stripped or stripped.startswith("#"):
            if stripped and comments_from is None:
                comments_from = index
            index += 1
            continue
        if _is_bare_language(line):
            return _program(lines[index + 1 :])
        if not _is_prose(stripped):
            return _program(lines[index if comments_from is None else comments_from :])
        comments_from = None
        index += 1
    return None


def program_from_spawn_argument(code: str) -> str:
    """What `spawn(code)` runs: the program in a model answer, or the text as it is."""
    extracted = extract_program(code)
    return extracted if extracted is not None else code


_PYTHON_FENCES = frozenset({"", "python", "python3", "py"})
_FENCE_OPEN = re.compile(
    r"[ \t]{0,3}(?:```|~~~)[ \t]*(?P<language>[\w+.-]{0,40})(?:[ \t][^\n]{0,200})?"
)
_FENCE_CLOSE = re.compile(r"[ \t]{0,3}(?:```|~~~)[ \t]*")
_BARE_LANGUAGES = frozenset({"python", "python3", "py"})

# Words that may follow one another in Python (two other words in a row never can).
_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {"type"}
_COMPOUND = frozenset(
    {"if", "elif", "else", "for", "while", "with", "try", "except", "finally", "def", "class",
     "async", "match", "case"}
)  # fmt: skip
_STRING_PREFIXES = frozenset({"r", "u", "b", "f", "br", "rb", "fr", "rf"})
_TOKEN = re.compile(r"\w+|\S")
_LIST_MARKER = re.compile(r"(?:\d{1,3}[.)]|[-*+\u2022])\s")
_WORD_QUOTE = re.compile(r"\b(\w+)'\w")  # \b: tried once per word, so linear
# ASCII punctuation Python source may hold outside strings and comments.
_CODE_PUNCTUATION = frozenset("()[]{}:;,.=+-*/%&|^~<>!@\\")


def _is_prose(line: str) -> bool:
    """True only when `line` (stripped, not blank, not a comment) cannot start a program."""
    if _LIST_MARKER.match(line) or line.startswith("**"):
        return True
    before_strings = re.split(r"[\"#]", line, maxsplit=1)[0]
    quoted = _WORD_QUOTE.search(before_strings)  # here's, don't: a word glued to a quote
    if quoted is not None and quoted[1].lower() not in _STRING_PREFIXES:
        return True
    code = re.split(r"[\"'#]", line, maxsplit=1)[0]  # what precedes any string or comment
    tokens = _TOKEN.findall(code)
    if not tokens:
        return False
    for char in code:
        if not (char.isalnum() or char.isspace() or char in _CODE_PUNCTUATION or char == "_"):
            return True  # `?`, `$`, a backtick, curly quotes, dashes: never outside a string
    if "!" in code.replace("!=", ""):
        return True
    words = [t if (t[0].isalnum() or t[0] == "_") else None for t in tokens]
    for first, second in itertools.pairwise(words):
        if first and second and first not in _KEYWORDS and second not in _KEYWORDS:
            return True  # two names or numbers in a row: a sentence
    if tokens[0] == "for" and "in" not in tokens:
        return True  # `for example, ...`
    if len(code) == len(line):  # no string or comment on the line: its end tells too
        return _ends_like_prose(line, tokens)
    return False


def _ends_like_prose(line: str, tokens: list[str]) -> bool:
    head = tokens[0]
    if line.endswith(":"):
        return head not in _COMPOUND and head != "lambda"
    if line.endswith(".") and len(line) > 1 and not line[-2].isdigit():
        return True
    # A single word on its own line: `Sure`, `Answer` (a bare name is never a useful start).
    return len(tokens) == 1 and tokens[0][:1].isupper() and tokens[0] not in _KEYWORDS


def _is_bare_language(line: str) -> bool:
    """A line that only names the language (`python`, `py:`), as small models write when they
    drop a fence's backticks. String operations, each reading the line once: the pattern it
    replaces (two runs of blanks around an optional `:`) backtracked quadratically over a long
    run of blanks, for seconds at the size `spawn()` accepts."""
    name = line.strip(" \t")
    if name.endswith(":"):
        name = name[:-1].rstrip(" \t")
    return name.lower() in _BARE_LANGUAGES


def _closing_fence(lines: list[str], start: int) -> int:
    for index in range(start, len(lines)):
        if _FENCE_CLOSE.fullmatch(lines[index]):
            return index
    return len(lines)


def _program(lines: list[str]) -> str | None:
    # Dedented: code indented as a block inside an answer (a list item, a quote) still runs.
    code = textwrap.dedent("\n".join(lines)).strip("\n")
    return code if code.strip() else None
