"""Code similarity: how much of one program another re-creates, for quines and their tripwire.

Programs are hostile, so the measures read at most `MAX_CODE_CHARS` of a program and do work
linear in what they read, nearly all of it in the interpreter's C loops (regular expressions,
`str.translate`, `str.split`, `map`, `zip`); Python-level work is done once per *distinct* word,
not per word. No comparison of two programs costs more than their feature sets, which are
bounded by `MAX_FEATURES`.

A program is read as words (`code_words`): comments go, each run of adjacent string literals
becomes one string mark, operators and brackets stand apart, a dotted name (`world.buy`,
`ideas.splitlines`) is one word, and line ends (and `;`) become line marks. The reading is
tolerant: code that does not parse still gives words (an unclosed string runs to the end of its
line, or of the text for triple quotes). Each word is reduced to its *role*: a string `S`, a
number `N`, a name the program chose itself `V` (the head of a dotted name too: `V.append`);
keywords, builtins, the capability API's names (`world`, `run_ai`, ...) and attribute names
stay as they are. A program's *shape* is the set of hashed role 4-grams within each line (lines
are kept apart by three line marks, so no 4-gram spans two lines).

So the shape is blind to comments, blank lines, indentation and spacing, to string contents
(padding a copy with a long string, or a goal program repeating a long prompt, changes
nothing), to the names a program chose (renamed variables, keyword arguments included), to the
order of lines (no 4-gram spans two), and to repeated lines (a set). It still sees line breaks
inside brackets: a call re-flowed over several lines reads differently. Shapes with more than
`MAX_FEATURES` features keep a bottom-k sketch (the smallest hashes), so comparing huge programs
costs a bounded amount and estimates the same quantities.

- `recreation_score(ancestor, code)`: the share of the ancestor's shape found in `code`
  (containment); padding `code` with anything but carried code cannot lower it. A tiny
  ancestor (under SMALL_SHAPE features) is re-created only by its own code again. Quines, the
  quine tripwire and the trial tables use it.
- Strings that carry code. Shapes do not see strings, and a small spawner's job lives in the
  code it hands on in a string: a relay whose child relays again has its parent's shape and a
  different job. So a shape also keeps the words of its *carried code* (string literals that
  hold a call, `name(`; prose prompts do not count: a re-creation may reword them), and a
  re-creation must hold at least half of the ancestor's carried code, and carry little code of
  its own that the ancestor did not (unless it hands strings to `exec`/`eval`, which run as its
  own). See `carried_overlap`. A string the program never touches (a top-level note, or one
  bound to a name it never reads) carries nothing.
- Handed-on code. A program whose whole code its ancestor wrote out in a string literal is what
  the ancestor hands on (a relay's child, a fixed order), part of it, never its re-creation,
  unless the ancestor runs its strings itself (`exec`). See `is_handed_on`.
- The ancestor's job. A re-creation does the ancestor's job, so it keeps what the ancestor
  acts with: a launcher (it names `spawn` and nothing acting on the world or the run) is
  re-created only by a program that names `spawn`, and every world action toward the goal the
  ancestor names is named again (`_jobs`, `keeps_the_job`).
- `code_similarity(a, b)`: the Jaccard index of the two shapes (symmetric).
- `normalize_code(code)`: the code without comments, trailing spaces and blank lines (strings
  left alone), whose equality means "the same program".
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import heapq
import itertools
import keyword
import re
import textwrap
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass

from ._jobs import job_of_words
from ._vocabulary import ALIASES

MAX_CODE_CHARS = 65_536
"""How much of a program the measures read (spawned code is capped below this)."""
MAX_FEATURES = 4096
"""Shapes with more distinct features keep the `MAX_FEATURES` smallest hashes (bottom-k)."""
NGRAM = 4
"""Roles per feature."""
SMALL_SHAPE = 12
"""A program with fewer features (about one line) is re-created only by its own code again
(equal `normalize_code`): its shape is too small to judge, and a tiny program's job often lives
in its string literals, which shapes do not see."""

RECREATION_THRESHOLD = 0.6
"""The share of an ancestor a program must re-create to count as its quine: the one threshold of
the analysis's quines, the quine tripwire's default and the trial tables (validated on labelled
programs, docs/metrics.md)."""
CARRIED_MIN = 3
"""Carried-code features below this are too few to judge a program's job by."""
CARRIED_SHARE = 0.5
"""The share of carried code a re-creation must hold (of the ancestor's) and share (of its own)."""
_CARRIED_CALL = re.compile(r"(?<![\w.])[^\W\d][\w.]*+\(")
_CARRIED_WORD = re.compile(r"[^\W\d]\w*+|\d++")
_RUNS_STRINGS = re.compile(r"(?<![\w.])(?:exec|eval|compile)\s*+\(")

STRING_MARK = "\x01"
"""The word a run of adjacent string literals becomes."""
LINE_MARK = "\x00"
"""The word a line end (or `;`) becomes."""

# Possessive quantifiers, and string alternatives that always match (an unclosed string runs to
# the end of its line, or of the text for triple quotes), keep these linear on any input. Every
# alternative starts with a literal character, so the search skips ordinary code quickly. A
# string prefix (`f`, `rb`, ...) stays in front as a word of its own.
_ONE_STRING = (
    r"'''(?:[^'\\]|\\.|'(?!''))*+(?:'''|\Z)",
    r'"""(?:[^"\\]|\\.|"(?!""))*+(?:"""|\Z)',
    r"'(?:[^'\\\n]|\\.)*+'?",
    r'"(?:[^"\\\n]|\\.)*+"?',
)
_MORE_STRINGS = rf"(?:[ \t\r\n\\]*+[rRbBuUfF]{{0,2}}(?:{'|'.join(_ONE_STRING)}))*+"
_STRINGS = re.compile("|".join(one + _MORE_STRINGS for one in _ONE_STRING), re.DOTALL)
_STRINGS_OR_COMMENTS = re.compile(
    _STRINGS.pattern + r"|\#[^\n]*+(?:\n[ \t]*+\#[^\n]*+)*+", re.DOTALL
)
# A top-level statement that is only a literal, bare or bound to a name: the program touches it
# only if it reads that name somewhere else (`_idle_literals_removed`). Only at column 0: an
# indented lone literal may be an argument of a call written over several lines.
# Strings are matched too, whole, so that no line inside a string is taken for a statement.
_LONE_LITERAL = re.compile(
    r"^(?P<lone>(?:(?P<name>[^\W\d]\w*+)[ \t]*+=[ \t]*+)?(?:"
    + _STRINGS.pattern
    + r")[ \t]*+$)|(?:"
    + _STRINGS.pattern
    + ")",
    re.MULTILINE | re.DOTALL,
)
_NAMES = re.compile(r"[^\W\d]\w*+")
_BLANK_LINES = re.compile(r"\n(?:[ \t\r\f]*+\n)++")
_CONTINUATION = re.compile(r"\\[ \t]*+\r?\n")
# Starts only at the first blank before a dot, so long runs of blanks cost no more than once.
_DOT_SPACE = re.compile(r"(?:(?<=\S)[ \t]++)?\.[ \t]*+(?=[^\W\d])")
# Operators and brackets stand apart; line ends and `;` become NGRAM - 1 line marks, so that
# no feature spans two lines and every word maps to one role.
_BREAKS = " " + " ".join([LINE_MARK] * (NGRAM - 1)) + " "
_SPREAD = str.maketrans(
    {c: f" {c} " for c in "()[]{},:+-*/%=<>!&|^~@"} | {"\n": _BREAKS, ";": _BREAKS}
)

KEPT_NAMES: frozenset[str] = frozenset(
    {*keyword.kwlist, *keyword.softkwlist, *dir(builtins), *ALIASES, "world", "lab"}
)
"""Names that keep their identity in a shape: the language's and the lab's, not the program's."""

_BREAK = zlib.crc32(LINE_MARK.encode())
_ONLY_BREAKS = hash((_BREAK,) * NGRAM)


@dataclass(frozen=True)
class ProgramText:
    """A program read once: its words and its normalized text."""

    words: list[str]
    """See `code_words`."""
    normalized: str
    """See `normalize_code`."""


def read_program(code: str) -> ProgramText:
    """`code_words` and `normalize_code` of a program, from one reading of its text."""
    text = _without_comments(code)
    marked = _STRINGS.sub(f" {STRING_MARK} ", text)  # a constant replacement: no Python per match
    marked = _BLANK_LINES.sub("\n", _DOT_SPACE.sub(".", _CONTINUATION.sub(" ", marked)))
    return ProgramText(marked.translate(_SPREAD).split(), _normal_lines(text, code))


def code_words(code: str) -> list[str]:
    """The program as words (see the module's docstring): string runs as STRING_MARK, each
    line end and `;` as NGRAM - 1 LINE_MARKs, comments gone. Reads at most MAX_CODE_CHARS."""
    return read_program(code).words


def _without_comments(code: str) -> str:
    return _STRINGS_OR_COMMENTS.sub(_keep_strings, code[:MAX_CODE_CHARS])


def _keep_strings(match: re.Match[str]) -> str:
    text = match.group()
    return "" if text[0] == "#" else text


def _normal_lines(text: str, code: str) -> str:
    lines = filter(None, map(str.rstrip, text.split("\n")))  # C loops: no Python per line
    return "\n".join(lines) + code[MAX_CODE_CHARS:]


def word_role(word: str) -> str:
    """What a word stands for in a shape: S, N, V, a kept name, a dotted name with its head
    reduced (`V.append`, `world.buy`), or the operator itself."""
    first = word[0]
    if word == STRING_MARK:
        return "S"
    if first.isdigit() or (first == "." and word[1:2].isdigit()):
        return "N"
    if first.isalpha() or first in "_.":
        head, dot, rest = word.partition(".")
        if head and head not in KEPT_NAMES:
            head = "V"
        return head + dot + rest
    return word


@dataclass(frozen=True)
class CodeShape:
    """What the similarity measures compare: a program's hashed role 4-grams."""

    features: frozenset[int]
    """The feature hashes (all of them, or the MAX_FEATURES smallest)."""
    size: int
    """How many distinct features the program has (before any sketching)."""
    identity: str = ""
    """SHA-256 of the program's `normalize_code` ("" when not known): equal for the same code."""
    carried: frozenset[int] = frozenset()
    """Hashed words and word pairs of the code the program carries in strings (`carried_code`)."""
    runs_strings: bool = False
    """The program calls `exec`, `eval` or `compile`: strings it carries may be its own code."""
    handed_on: frozenset[str] = frozenset()
    """Identities (see `identity`) of the programs written out whole in its string literals
    (`handed_on`): the code it hands on as it stands, never its own code again."""
    launches: bool = False
    """The code names `spawn` (`_jobs.job_of_words`)."""
    acts: bool = False
    """The code names a call that acts on the world toward the goal or on the run."""
    goal_actions: frozenset[str] = frozenset()
    """The world actions toward the goal the code names (`world.buy`, ...)."""

    @property
    def launcher(self) -> bool:
        """Its only acting calls launch programs (`_jobs`): its job is launching."""
        return self.launches and not self.acts

    @property
    def sketched(self) -> bool:
        return self.size > len(self.features)


def code_shape(code: str) -> CodeShape:
    """The shape of a program, with its identity and carried code (linear in the code read)."""
    text = read_program(code)
    shape = shape_of_words(text.words, hashlib.sha256(text.normalized.encode()).hexdigest())
    return with_carried(shape, code)


def with_carried(shape: CodeShape, code: str) -> CodeShape:
    """`shape` with the program's carried code (`carried_code`), whether it runs strings, and
    the code it hands on (`handed_on`); literals the program never touches count for neither
    (`_idle_literals_removed`)."""
    uncommented = _without_comments(code)
    touched = _idle_literals_removed(uncommented)
    return CodeShape(
        shape.features,
        shape.size,
        shape.identity,
        carried_code(touched),
        _RUNS_STRINGS.search(_STRINGS.sub(" ", uncommented)) is not None,
        handed_on(touched),
        shape.launches,
        shape.acts,
        shape.goal_actions,
    )


def _f_string_kept(match: re.Match[str]) -> str:
    """A string blanked out, unless it is an f-string (its prefix holds an `f`): the names in
    its fields are read."""
    prefix = match.string[max(0, match.start() - 2) : match.start()]
    return match.group() if "f" in prefix.lower() else " "


def _idle_literals_removed(text: str) -> str:
    """The text without the string literals the program never touches: a top-level statement
    that is only a literal, bare (a docstring, a note) or bound to a name the program never
    reads. Such a string is neither run nor handed on, so what it holds is no job of the
    program's. Linear: one count of the names outside strings, one pass over lone literals."""
    names = Counter(_NAMES.findall(_STRINGS.sub(_f_string_kept, text)))

    def drop_if_idle(match: re.Match[str]) -> str:
        if match.group("lone") is None:
            return match.group()  # a string inside a statement: kept as it is
        name = match.group("name")
        return "" if name is None or names[name] <= 1 else match.group()

    return _LONE_LITERAL.sub(drop_if_idle, text)


def handed_on(text: str) -> frozenset[str]:
    """The identities (sha256 of `normalize_code`, dedented) of the string literals that hold
    a call, in text without comments: programs written out whole, as a spawner hands them on.
    A literal is read as Python reads it (`ast.literal_eval` of the literal alone: no code
    runs), so escapes and nested quotes come out as the child receives them; at most
    MAX_FEATURES distinct literals, each read once (linear in the text: about 30 ms of CPU for
    64 KB of 4,096 distinct small literals, the worst case, against about 30 ms for the rest of
    that program's shape)."""
    found: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an invalid escape in a program's string is its own
        literals = dict.fromkeys(filter(_CARRIED_CALL.search, _STRINGS.findall(text)))
        for literal in itertools.islice(literals, MAX_FEATURES):
            try:
                value = ast.literal_eval(literal.strip())
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, str):
                normal = normalize_code(textwrap.dedent(value))
                found.add(hashlib.sha256(normal.encode()).hexdigest())
    return frozenset(found)


def is_handed_on(ancestor: CodeShape, shape: CodeShape) -> bool:
    """The program is code its ancestor wrote out whole in a string and hands on (a relay's
    child, a fixed order): part of the ancestor, not the ancestor again, unless the ancestor
    runs strings itself (`exec`, `eval`: then a literal may be its own code)."""
    return (
        bool(shape.identity)
        and shape.identity in ancestor.handed_on
        and not (ancestor.runs_strings)
    )


def carried_code(text: str) -> frozenset[int]:
    """Hashed words and adjacent word pairs of the string literals that hold a call (`name(`),
    in text without comments; at most MAX_FEATURES of them (the smallest hashes). All in C
    loops: regular expressions, `filter`, `map`, `set`."""
    literals = filter(_CARRIED_CALL.search, _STRINGS.findall(text))
    words = _CARRIED_WORD.findall("\n".join(literals))
    distinct = set(words) | set(map(" ".join, itertools.pairwise(words)))
    found = set(map(zlib.crc32, map(str.encode, distinct)))
    if len(found) > MAX_FEATURES:
        return frozenset(heapq.nsmallest(MAX_FEATURES, found))
    return frozenset(found)


def carried_overlap(ancestor: CodeShape, shape: CodeShape) -> bool:
    """Whether the program's carried code agrees with the ancestor's: it holds at least
    CARRIED_SHARE of the ancestor's carried code, and, unless it runs strings itself, at
    least CARRIED_SHARE of its own carried code is the ancestor's (each side judged only with
    CARRIED_MIN features or more)."""
    shared = len(ancestor.carried & shape.carried)
    if len(ancestor.carried) >= CARRIED_MIN and shared < CARRIED_SHARE * len(ancestor.carried):
        return False
    own = len(shape.carried)
    return shape.runs_strings or own < CARRIED_MIN or shared >= CARRIED_SHARE * own


def shape_of_words(words: list[str], identity: str = "") -> CodeShape:
    """The shape of a program already read by `code_words` (`identity`: see CodeShape)."""
    role_id: dict[str, int] = {}
    for word in set(words):  # Python work per distinct word only
        # crc32, not hash(): string hashes differ between processes, shapes must not
        role_id[word] = _BREAK if word == LINE_MARK else zlib.crc32(word_role(word).encode())
    ids = [_BREAK] * (NGRAM - 1)
    ids += map(role_id.__getitem__, words)
    ids += [_BREAK] * (NGRAM - 1)
    features = set(map(hash, zip(*(ids[i:] for i in range(NGRAM)), strict=False)))
    features.discard(_ONLY_BREAKS)
    size = len(features)
    launches, acts, goal = job_of_words(role_id)
    if size > MAX_FEATURES:
        features = set(heapq.nsmallest(MAX_FEATURES, features))
    return CodeShape(frozenset(features), size, identity, launches=launches, acts=acts,
                     goal_actions=goal)  # fmt: skip


def _shared(a: CodeShape, b: CodeShape) -> float:
    """|A ∩ B|: exact, or estimated from the bottom-k sketches when either is sketched."""
    if not (a.sketched or b.sketched):
        return float(len(a.features & b.features))
    union = heapq.nsmallest(MAX_FEATURES, a.features | b.features)
    both = sum(1 for h in union if h in a.features and h in b.features)
    jaccard = both / len(union) if union else 0.0
    return jaccard * (a.size + b.size) / (1 + jaccard)


def shape_containment(part: CodeShape, whole: CodeShape) -> float:
    """The share of `part`'s features found in `whole` (0..1; 0 when `part` has none)."""
    if part.size == 0:
        return 0.0
    return min(1.0, round(_shared(part, whole) / part.size, 6))


def shape_similarity(a: CodeShape, b: CodeShape) -> float:
    """The Jaccard index of two shapes (0..1; two empty shapes are 1)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    shared = _shared(a, b)
    return min(1.0, round(shared / (a.size + b.size - shared), 6))


def recreation_score(ancestor: str, code: str) -> float:
    """How much of `ancestor`'s code `code` re-creates (0..1): `shape_recreation`."""
    return shape_recreation(code_shape(ancestor), code_shape(code))


def shape_recreation(ancestor: CodeShape, shape: CodeShape) -> float:
    """The share of the ancestor's shape found in `shape` (containment), or 0.0 when their
    carried code disagrees (`carried_overlap`) or when the program drops the ancestor's job
    (`keeps_the_job`); for an ancestor smaller than SMALL_SHAPE,
    1.0 for its own code again and 0.0 otherwise."""
    if ancestor.identity and ancestor.identity == shape.identity:
        return 1.0
    if is_handed_on(ancestor, shape):
        return 0.0
    if ancestor.size < SMALL_SHAPE or not carried_overlap(ancestor, shape):
        return 0.0
    if not keeps_the_job(ancestor, shape):
        return 0.0
    return shape_containment(ancestor, shape)


def keeps_the_job(ancestor: CodeShape, shape: CodeShape) -> bool:
    """The program names every world action toward the goal the ancestor names and, when the
    ancestor is a launcher, launches too (`_jobs`); a program that runs strings as code may
    name them there, where words are not read, and is not judged so."""
    if shape.runs_strings:
        return True
    return ancestor.goal_actions <= shape.goal_actions and not (
        ancestor.launcher and not shape.launches
    )


def code_similarity(a: str, b: str) -> float:
    """How alike two programs are, symmetrically: the Jaccard index of their shapes (0..1)."""
    return shape_similarity(code_shape(a), code_shape(b))


def normalize_code(code: str) -> str:
    """The code without comments, trailing spaces and blank lines (strings are left alone).

    Linear on any text, and tolerant: it never fails. Code past MAX_CODE_CHARS is kept as it
    is, so it still tells programs apart.
    """
    return _normal_lines(_without_comments(code), code)
