"""The text an expression builds from constants, read on the syntax tree (nothing runs).

Code a program hands `exec` and a module it names to `__import__` are often built at run time
from constant pieces. Where every piece is a constant of the program and every step a pure
string operation, the text is known without running anything, and the detectors read it:

- a string constant, or a name bound once to an expression that builds one;
- `a + b + ...` (a chain of any length); reversal `s[::-1]`, `"".join(reversed(s))`;
- character codes: `"".join(chr(c) for c in codes)`, `"".join(map(chr, codes))`,
  `bytes(codes).decode()`;
- joins: `sep.join(pieces)` over a list or tuple of texts (`"\\n".join(lines)`);
- templates: `template % value`, `template % (a, b)`, `template % {"k": v}` with `%s`, `%r`,
  `%d` and `%%` only; `template.format(a, k=b)` with plain fields; f-strings;
- lookups: `table["key"]`, `table.get("key")`, `items[0]` in a dict, list or tuple literal bound
  once to a name.

`texts_of` also follows a value that can be several constants (a loop over a literal of names,
a dict read by a key that is not a constant): each is a text the program may build.

Every step is bounded: depth (`MAX_DECODE_DEPTH`) and length (`MAX_FLOW_CHARS`) of each text,
and the work of all the texts read from one program (`TextReader`: each expression is rebuilt
at most once per depth, and every step spends from one `_work.Work` budget, linear in the
program's size; texts still unread when it is spent are unknown). Names bound once form a graph
whose paths multiply (`a2 = a1 + a1 + ...`, `a3 = a2 + a2 + ...`), and texts that stay empty
never reach MAX_FLOW_CHARS: only a budget of work bounds the time of such a reading.
"""

from __future__ import annotations

import ast
import itertools
import re
from string import Formatter

from ._work import CHARS_PER_UNIT, Work, WorkExhausted

MAX_FLOW_CHARS = 8_192
"""Longer texts are not rebuilt (and longer programs have no normal form)."""
MAX_DECODE_DEPTH = 8
"""How many operations deep a text is rebuilt."""
MAX_CHOICES = 64
"""How many constants one value may stand for (`texts_of`)."""
_PERCENT = re.compile(r"%(?:\((\w{1,40})\))?([srd%])")
_ANY_PERCENT = re.compile(r"%")

Bound = dict[str, ast.expr]


class TextReader:
    """Reads the texts expressions of one program build (see the module's docstring), under one
    budget of work for all of them (`_work.Work`): each expression is read at most once per
    depth (a name read a thousand times is rebuilt once), and once the budget is spent every
    text still unread is unknown (None)."""

    def __init__(self, once: Bound, work: Work | None = None) -> None:
        self.once = once
        """Names bound once, each to its value."""
        self.work = work if work is not None else Work()
        self._memo: dict[tuple[ast.expr, int], str | None] = {}

    def text(self, node: ast.expr, depth: int = MAX_DECODE_DEPTH) -> str | None:
        """The text an expression builds from constants, or None."""
        try:
            found = _text(node, self, depth)
        except WorkExhausted:
            return None
        return found if found is not None and len(found) <= MAX_FLOW_CHARS else None

    def texts(self, node: ast.expr, loops: dict[str, ast.expr]) -> list[str]:
        """Every text a value can be: one (`text`), or each constant of a literal it is drawn
        from (a loop variable over a literal, `table[key]` with a key that is not a constant)."""
        try:
            return _texts(node, self, loops)
        except WorkExhausted:
            return []

    def rebuilt(self, node: ast.expr, depth: int) -> str | None:
        """`_text_step`, read at most once per expression and depth (the result is kept)."""
        key = (node, depth)
        self.work.spend()
        if key in self._memo:
            return self._memo[key]
        found = _text_step(node, self, depth)
        if found is not None:
            self.work.spend(len(found) // CHARS_PER_UNIT)
        self._memo[key] = found
        return found


def text_of(node: ast.expr, once: Bound, depth: int = MAX_DECODE_DEPTH) -> str | None:
    """The text an expression builds from constants (see the module's docstring), or None:
    one reading, under a budget of its own (`TextReader`)."""
    return TextReader(once).text(node, depth)


def texts_of(node: ast.expr, once: Bound, loops: dict[str, ast.expr]) -> list[str]:
    """`TextReader.texts`, under a budget of its own."""
    return TextReader(once).texts(node, loops)


def _texts(node: ast.expr, r: TextReader, loops: dict[str, ast.expr]) -> list[str]:
    if isinstance(node, ast.Name) and node.id in loops:
        return _each(loops[node.id], r)
    if isinstance(node, ast.Subscript | ast.Call):
        table = _table(node.value if isinstance(node, ast.Subscript) else node.func, r)
        found = r.text(node)
        if found is None and table is not None:
            return _each(table, r)
    found = r.text(node)
    return [found] if found is not None else []


def _each(literal: ast.expr, r: TextReader) -> list[str]:
    if isinstance(literal, ast.Dict):
        values = (v for v in literal.values if v is not None)
        items: list[ast.expr] = list(itertools.islice(values, MAX_CHOICES))
    elif isinstance(literal, ast.List | ast.Tuple | ast.Set):
        items = literal.elts[:MAX_CHOICES]
    else:
        return []
    found = (r.text(item) for item in items)
    return [text for text in found if text is not None]


def _table(node: ast.expr, r: TextReader) -> ast.expr | None:
    """The dict, list or tuple literal a lookup reads (`t[k]`, `t.get(k)`), or None. A chain
    of names is followed to its end, and no further than there are names (`a = b`, `b = a` is
    a cycle)."""
    if isinstance(node, ast.Attribute) and node.attr == "get":
        node = node.value
    for _ in range(len(r.once) + 1):
        if not (isinstance(node, ast.Name) and node.id in r.once):
            break
        r.work.spend()
        node = r.once[node.id]
    return node if isinstance(node, ast.Dict | ast.List | ast.Tuple) else None


def _text(node: ast.expr, r: TextReader, depth: int) -> str | None:
    return r.rebuilt(node, depth) if depth > 0 else None


def _text_step(node: ast.expr, r: TextReader, depth: int) -> str | None:
    depth -= 1
    if isinstance(node, ast.Name) and node.id in r.once:
        return _text(r.once[node.id], r, depth)
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _sum(node, r, depth)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _percent(node, r, depth)
    if isinstance(node, ast.JoinedStr):
        return _joined(node.values, r, depth)
    if isinstance(node, ast.Subscript):
        return _lookup(node, r, depth)
    if isinstance(node, ast.Call):
        return _call_text(node, r, depth)
    return None


def _sum(node: ast.BinOp, r: TextReader, depth: int) -> str | None:
    """`a + b + c + ...`: a chain of any length is one step deep (read without recursion);
    it stops at the first unknown part or once the text passes MAX_FLOW_CHARS."""
    terms: list[ast.expr] = [node.right]
    left = node.left
    while isinstance(left, ast.BinOp) and isinstance(left.op, ast.Add):
        terms.append(left.right)
        left = left.left
    terms.append(left)
    parts, size = [], 0
    for term in reversed(terms):
        part = _text(term, r, depth)
        if part is None or size + len(part) > MAX_FLOW_CHARS:
            return None
        parts.append(part)
        size += len(part)
    return "".join(parts)


def _bounded(text: str) -> str | None:
    return text if len(text) <= MAX_FLOW_CHARS else None


def _concat(parts: list[str | None], sep: str = "") -> str | None:
    """The parts joined, or None when one is unknown or the text would pass MAX_FLOW_CHARS
    (checked before anything is built)."""
    if any(p is None for p in parts):
        return None
    known = [p for p in parts if p is not None]
    size = sum(map(len, known)) + len(sep) * max(0, len(known) - 1)
    return sep.join(known) if size <= MAX_FLOW_CHARS else None


def _piece(node: ast.expr, r: TextReader, depth: int, conversion: str = "s") -> str | None:
    """A value put into a template: a text, or an integer constant (`%d`, `{}`)."""
    if isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) < 10**12:
        return str(node.value)
    text = _text(node, r, depth)
    return repr(text) if text is not None and conversion == "r" else text


def _joined(values: list[ast.expr], r: TextReader, depth: int) -> str | None:
    parts: list[str | None] = []
    for value in values:
        if isinstance(value, ast.FormattedValue):
            if value.format_spec is not None:
                return None
            conversion = "r" if value.conversion == ord("r") else "s"
            part = _piece(value.value, r, depth, conversion)
        else:
            part = _text(value, r, depth)
        parts.append(part)
        if part is None:
            return None
    return _concat(parts)


def _percent(node: ast.BinOp, r: TextReader, depth: int) -> str | None:
    """`template % args` with `%s`, `%r`, `%d`, `%(key)s` and `%%` only."""
    template = _text(node.left, r, depth)
    if template is None:
        return None
    r.work.spend(len(template) // CHARS_PER_UNIT + template.count("%"))  # one step a field
    if len(_PERCENT.findall(template)) != len(_ANY_PERCENT.findall(template)):
        return None
    right = node.right
    if isinstance(right, ast.Name) and isinstance(r.once.get(right.id), ast.Tuple | ast.Dict):
        right = r.once[right.id]
    keys = _keys(right, r)
    keyed = dict(zip(keys, right.values, strict=True)) if isinstance(right, ast.Dict) else {}
    given = list(right.elts) if isinstance(right, ast.Tuple) else [right]
    r.work.spend(len(given))
    parts: list[str | None] = []
    last = at = 0
    for spec in _PERCENT.finditer(template):
        key, kind = spec.groups()
        if kind == "%":
            part: str | None = "%"
        elif key is not None:
            part = _piece(keyed[key], r, depth, kind) if key in keyed else None
        else:
            part = _piece(given[at], r, depth, kind) if at < len(given) else None
            at += 1
        parts += [template[last : spec.start()], part]
        last = spec.end()
        if part is None:
            return None
    return _concat([*parts, template[last:]])


def _keys(node: ast.expr, r: TextReader) -> list[object]:
    """The constant keys of a dict literal (None for a `**` entry or a computed key)."""
    if not isinstance(node, ast.Dict):
        return []
    r.work.spend(len(node.keys))
    return [k.value if isinstance(k, ast.Constant) else None for k in node.keys]


def _format(template: str, node: ast.Call, r: TextReader, depth: int) -> str | None:
    """`template.format(a, b, k=c)` with plain fields (`{}`, `{0}`, `{k}`, `!r`, no spec)."""
    r.work.spend(len(node.keywords) + len(template) // CHARS_PER_UNIT)
    keyed = {k.arg: k.value for k in node.keywords if k.arg is not None}
    parts: list[str | None] = []
    at = 0
    try:
        fields = list(Formatter().parse(template))
    except ValueError:
        return None
    r.work.spend(len(fields))
    for literal, field, spec, conversion in fields:
        parts.append(literal)
        if field is None:
            continue
        if spec or conversion not in (None, "s", "r"):
            return None
        if field == "":
            field, at = str(at), at + 1
        index = int(field) if field.isascii() and field.isdigit() and len(field) < 4 else -1
        value = node.args[index] if 0 <= index < len(node.args) else keyed.get(field)
        part = _piece(value, r, depth, conversion or "s") if value is not None else None
        parts.append(part)
        if part is None:
            return None
    return _concat(parts)


def _lookup(node: ast.Subscript, r: TextReader, depth: int) -> str | None:
    if _is_reversal(node.slice):
        text = _text(node.value, r, depth)
        return text[::-1] if text is not None else None
    return _entry(_table(node.value, r), node.slice, r, depth)


def _entry(table: ast.expr | None, key: ast.expr, r: TextReader, depth: int) -> str | None:
    """The text at a constant key of a dict, list or tuple literal."""
    if not isinstance(key, ast.Constant) or table is None:
        return None
    if isinstance(table, ast.Dict):
        keys = _keys(table, r)
        found = [v for k, v in zip(keys, table.values, strict=True) if k == key.value]
        return _text(found[-1], r, depth) if found else None
    if isinstance(table, ast.List | ast.Tuple) and type(key.value) is int:
        elts = table.elts
        return _text(elts[key.value], r, depth) if -len(elts) <= key.value < len(elts) else None
    return None


def _call_text(node: ast.Call, r: TextReader, depth: int) -> str | None:
    func, args = node.func, node.args
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr == "get" and len(args) == 1 and not node.keywords:
        return _entry(_table(func.value, r), args[0], r, depth)
    if func.attr == "decode" and not args and isinstance(func.value, ast.Call):
        inner = func.value  # bytes(codes).decode()
        if isinstance(inner.func, ast.Name) and inner.func.id == "bytes" and len(inner.args) == 1:
            return _chars(inner.args[0], r, depth, limit=256)
        return None
    base = _text(func.value, r, depth)
    if base is None:
        return None
    if func.attr == "format":
        return _format(base, node, r, depth)
    if func.attr != "join" or len(args) != 1 or node.keywords:
        return None
    return _join(base, args[0], r, depth)


def _join(sep: str, arg: ast.expr, r: TextReader, depth: int) -> str | None:
    """`sep.join(...)` of a literal of texts, or (with an empty separator) of a reversed text
    or of character codes."""
    while isinstance(arg, ast.Name) and arg.id in r.once and depth > 0:
        arg, depth = r.once[arg.id], depth - 1
    if isinstance(arg, ast.List | ast.Tuple):
        if len(arg.elts) > MAX_FLOW_CHARS:
            return None
        return _concat([_text(e, r, depth) for e in arg.elts], sep)
    if sep:
        return None
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and len(arg.args) >= 1:
        if arg.func.id == "reversed" and len(arg.args) == 1:
            text = _text(arg.args[0], r, depth)
            return text[::-1] if text is not None else None
        if arg.func.id == "map" and len(arg.args) == 2 and _is_name(arg.args[0], "chr"):
            return _chars(arg.args[1], r, depth)
    if isinstance(arg, ast.GeneratorExp | ast.ListComp) and len(arg.generators) == 1:
        loop, element = arg.generators[0], arg.elt
        if (
            isinstance(loop.target, ast.Name)
            and not loop.ifs
            and isinstance(element, ast.Call)
            and _is_name(element.func, "chr")
            and len(element.args) == 1
            and _is_name(element.args[0], loop.target.id)
        ):
            return _chars(loop.iter, r, depth)
    return None


def _chars(node: ast.expr, r: TextReader, depth: int, limit: int = 0x110000) -> str | None:
    """The text of a list (or tuple) of character codes, each below `limit`."""
    if isinstance(node, ast.Name) and node.id in r.once and depth > 0:
        return _chars(r.once[node.id], r, depth - 1, limit)
    if not isinstance(node, ast.List | ast.Tuple) or len(node.elts) > MAX_FLOW_CHARS:
        return None
    r.work.spend(len(node.elts))
    codes = [
        e.value
        for e in node.elts
        if isinstance(e, ast.Constant) and type(e.value) is int and 0 <= e.value < limit
    ]
    return "".join(map(chr, codes)) if len(codes) == len(node.elts) else None


def _is_reversal(index: ast.expr) -> bool:
    return (
        isinstance(index, ast.Slice)
        and index.lower is None
        and index.upper is None
        and isinstance(index.step, ast.UnaryOp)
        and isinstance(index.step.op, ast.USub)
        and isinstance(index.step.operand, ast.Constant)
        and index.step.operand.value == 1
    )


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name
