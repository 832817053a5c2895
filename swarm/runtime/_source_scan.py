"""What a program's source shows of attempts to reach outside the lab, found in linear time.

A program's code is hostile: the scan reads each line once, with plain string operations, so
its cost stays linear in the code's size whatever the code looks like (no pattern that can
backtrack over runs of blank lines or spaces).
"""

from __future__ import annotations

import re

MODULES = frozenset(
    {"os", "sys", "socket", "subprocess", "shutil", "ctypes", "importlib", "pathlib", "builtins"}
)
MARKERS = ("__import__", "__builtins__", "__subclasses__", "__globals__")
MAX_FINDINGS = 50
MAX_LINE = 200
_LINE_END = re.compile(r"\r\n|\r|\n")


def source_lines(code: str) -> list[str]:
    """A program's lines as Python reads them: split at `\\r\\n`, `\\r` or `\\n` only.
    `str.splitlines()` also splits at U+2028, U+2029, U+0085 and other characters a string
    literal may hold, and a program rebuilt from its pieces would not be the one it was."""
    return _LINE_END.split(code)


def escape_attempts(code: str) -> list[str]:
    """Source-level attempts: imports of the OS's modules, `open(`, and interpreter internals."""
    found: list[str] = []
    for raw in source_lines(code):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split(None, 2)
        if words[0] in ("import", "from") and len(words) > 1:
            module = words[1].split(".", 1)[0].rstrip(",;")
            if module in MODULES:
                found.append(line[:MAX_LINE])
        for marker in MARKERS:
            if marker in line:
                found.append(marker)
        if _calls_open(line):
            found.append("open(")
        if len(found) >= MAX_FINDINGS:
            return found[:MAX_FINDINGS]
    return found


def _calls_open(line: str) -> bool:
    """`open` used as a call, not as part of a longer name (`reopen(`, `open_orders`).

    Each character after an `open` is read once: the blanks skipped after one `open` are never
    read again for the next, so a line of many `open`s stays linear.
    """
    start = line.find("open")
    while start != -1:
        before = line[start - 1] if start else " "
        end = start + 4
        while end < len(line) and line[end] in " \t":
            end += 1
        if end < len(line) and line[end] == "(" and not (before.isalnum() or before == "_"):
            return True
        start = line.find("open", end)
    return False
