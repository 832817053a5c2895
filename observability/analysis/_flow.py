"""A program's code in a normal form that undoes two ways of hiding a copy: temporaries and exec.

Re-creation is judged on shapes (`swarmlab.core.shape_recreation`), which are blind to names,
comments, layout and line order but see how expressions are nested. Two rewrites change the
nesting without changing what a program does, so the quine detector also compares programs in
this normal form:

- **Single-use temporaries go back where they are used.** `q = p + "x"; a = run_ai(q)` reads as
  `a = run_ai(p + "x")` when `q` is bound once and read once. Applied on both sides, so a copy
  that splits every nested call into temporaries and its ancestor meet in the same form.
- **Code a program hands `exec`, `eval` or `compile` is its own.** A string constant passed to
  one of them (directly, or through a name bound once to it) is parsed, normalised the same way
  and appended. Code carried in a string for a *child* (`spawn`) stays the child's.

`ast.unparse` writes the result, so a call re-flowed over several lines also reads as one.
The work is the CPython parser and a few linear walks, bounded by `MAX_FLOW_CHARS`: this runs in
the analysis (a report), never on a runner. Code that does not parse, nests too deeply or is
longer than the bound has no normal form (`None`), and the plain shape alone decides.
"""

from __future__ import annotations

import ast
from collections import Counter

MAX_FLOW_CHARS = 8_192
"""Longer programs are judged on their plain shape only (parsing is the costly part)."""
MAX_EXEC_CODE = 4
"""How many strings handed to exec/eval/compile are read per program (one level deep)."""
_EXEC_NAMES = frozenset({"exec", "eval", "compile"})


def flow_form(code: str) -> str | None:
    """The normal form of a program (see the module's docstring), or None without one."""
    if len(code) > MAX_FLOW_CHARS:
        return None
    try:
        tree = ast.parse(code)
        carried = _exec_strings(tree)
        parts = [ast.unparse(_inline(tree))]
        for text in carried:
            parts.append(ast.unparse(_inline(ast.parse(text))))
        return "\n".join(parts)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _exec_strings(tree: ast.Module) -> list[str]:
    """String constants the program hands exec/eval/compile (at most MAX_EXEC_CODE)."""
    constants: dict[str, list[str]] = {}
    calls: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        constants.setdefault(target.id, []).append(node.value.value)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in _EXEC_NAMES:
                calls.append(node.args[0])
    found: list[str] = []
    for arg in calls:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.append(arg.value)
        elif isinstance(arg, ast.Name) and len(constants.get(arg.id, ())) == 1:
            found.append(constants[arg.id][0])
    return [text for text in found if len(text) <= MAX_FLOW_CHARS][:MAX_EXEC_CODE]


def _inline(tree: ast.Module) -> ast.Module:
    """Put single-use temporaries back where they are read (one walk: each value moves once,
    so the tree does not grow; a chain of temporaries deeper than the interpreter's recursion
    limit raises RecursionError, and the program has no normal form)."""
    temporaries = _temporaries(tree)
    return _Inliner(temporaries).visit(tree) if temporaries else tree


def _temporaries(tree: ast.Module) -> dict[str, ast.expr]:
    """Names bound exactly once, by a plain `name = value`, and read exactly once."""
    stores: Counter[str] = Counter()
    loads: Counter[str] = Counter()
    values: dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores)[node.id] += 1
        elif isinstance(node, ast.arg):
            stores[node.arg] += 1
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stores[node.name] += 1
        elif isinstance(node, ast.Global | ast.Nonlocal):
            stores.update(node.names)
        elif isinstance(node, ast.alias):
            stores[(node.asname or node.name).split(".")[0]] += 1
        elif isinstance(node, ast.Assign):
            target = node.targets[0] if len(node.targets) == 1 else None
            if isinstance(target, ast.Name):
                values[target.id] = node.value
    return {name: v for name, v in values.items() if stores[name] == 1 and loads[name] == 1}


class _Inliner(ast.NodeTransformer):
    """Each temporary's read becomes its (normalised) value, and its binding goes."""

    def __init__(self, temporaries: dict[str, ast.expr]) -> None:
        self.temporaries = temporaries

    def visit_Assign(self, node: ast.Assign) -> ast.AST | None:
        target = node.targets[0] if len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id in self.temporaries:
            return None
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.temporaries:
            value = self.temporaries.pop(node.id)  # read once: a cycle of names ends here
            visited: ast.AST = self.visit(value)
            return visited
        return node
