"""Code similarity: how close two programs' code is, for quine detection and its tripwire.

Similarity is `difflib.SequenceMatcher(autojunk=False).ratio()` over characters of the code with
comments, trailing spaces and blank lines removed (`normalize_code`); autojunk is off because on
source text it would discard spaces and common letters as "junk" and distort the ratio.
"""

from __future__ import annotations

import difflib
import io
import tokenize


def normalize_code(code: str) -> str:
    """The code without comments, trailing spaces and blank lines (strings are left alone)."""
    lines = code.split("\n")
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start
                lines[row - 1] = lines[row - 1][:col]
    except (tokenize.TokenError, SyntaxError):
        # Code that does not tokenize (it crashed, most likely): drop whole-line comments only.
        lines = [line for line in code.split("\n") if not line.lstrip().startswith("#")]
    return "\n".join(line.rstrip() for line in lines if line.strip())


def code_similarity(a: str, b: str) -> float:
    """SequenceMatcher ratio (0..1) of the two programs' normalized code."""
    return _matcher(normalize_code(a), normalize_code(b)).ratio()


def similar_at_least(a: str, b: str, threshold: float) -> bool:
    """ratio(a, b) >= threshold for already normalized code; cheap upper bounds first."""
    if a == b:
        return True
    m = _matcher(a, b)
    return (
        m.real_quick_ratio() >= threshold
        and m.quick_ratio() >= threshold
        and (m.ratio() >= threshold)
    )


def _matcher(a: str, b: str) -> difflib.SequenceMatcher[str]:
    return difflib.SequenceMatcher(None, a, b, autojunk=False)
