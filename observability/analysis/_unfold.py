"""Helpers written out, for the normal form (`_flow`): a pipeline of steps reads the same
whether it is written as straight code or as helper functions called through a table.

Three rewrites of the syntax tree, each linear in it (nothing runs):

- **A dispatch table called over its keys is the calls in order.** `TABLE = {"a": f, "b": g}`
  (bound once) then `for step in ["a", "b"]: TABLE[step](state)` reads as `f(state)` then
  `g(state)`, for a literal of at most `MAX_UNROLL` keys, every one in the table, while the
  copies made stay within `MAX_UNROLLED_NODES` for the whole tree (a table of large entries
  dispatched over by many loops would otherwise copy code quadratic in the program's size).
- **A procedure called once is its body in place.** A top-level `def f(p): ...` without
  `return`, called exactly once, as a statement of the top level, with as many arguments as
  parameters, is its body there (`p = arg` first, where the argument is not the name `p`
  itself; its `global` statements, no-ops at the top level, go), and the definition goes.
- **A dict used as a namespace reads as names.** `state["ideas"]`, a name subscripted by a
  constant that is an identifier, reads as the name `state_ideas` (shapes see a name, `V`,
  as they see a variable the straight code would use).
"""

from __future__ import annotations

import ast
import copy
from collections import Counter

from ._work import Work, WorkExhausted

MAX_UNROLL = 16
"""Longer loops over a dispatch table are left as they are (each call is a copy)."""
MAX_UNROLLED_NODES = 8_192
"""How many syntax nodes unrolling may copy in one tree (the work of copying, and how much
the normal form grows); loops past it are left as they are."""


def unfold(tree: ast.Module) -> ast.Module:
    """The three rewrites above, in order (the tree is changed in place and returned)."""
    tree.body = _procedures(_unrolled(tree.body, Work(MAX_UNROLLED_NODES)))
    _Namespaces().visit(tree)  # in place: each subscript is replaced within its parent
    return ast.fix_missing_locations(tree)


def _tables(body: list[ast.stmt]) -> dict[str, ast.Dict]:
    """Top-level names bound exactly once, to a dict literal."""
    bound: dict[str, list[ast.expr]] = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                bound.setdefault(target.id, []).append(stmt.value)
    return {n: v[0] for n, v in bound.items() if len(v) == 1 and isinstance(v[0], ast.Dict)}


def _unrolled(body: list[ast.stmt], work: Work) -> list[ast.stmt]:
    """Dispatch loops written as their calls, while `work` affords the copies; a table no
    longer read afterwards goes."""
    tables = _tables(body)
    out: list[ast.stmt] = []
    for stmt in body:
        calls = _dispatch(stmt, tables, work)
        out += calls if calls is not None else [stmt]
    if len(out) == len(body) and all(a is b for a, b in zip(out, body, strict=True)):
        return body
    read = {n.id for s in out for n in ast.walk(s) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Load)}  # fmt: skip
    return [s for s in out if not (_binds_table(s, tables) and _bound_name(s) not in read)]


def _bound_name(stmt: ast.stmt) -> str:
    target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
    return target.id if isinstance(target, ast.Name) else ""


def _binds_table(stmt: ast.stmt, tables: dict[str, ast.Dict]) -> bool:
    return isinstance(stmt, ast.Assign) and tables.get(_bound_name(stmt)) is stmt.value


def _dispatch(stmt: ast.stmt, tables: dict[str, ast.Dict], work: Work) -> list[ast.stmt] | None:
    """The calls a `for k in [...]: TABLE[k](args)` loop makes, in order, or None (`TABLE`
    a name bound once to a dict literal, or the literal itself; None too when `work` cannot
    afford the copies)."""
    if not (isinstance(stmt, ast.For) and isinstance(stmt.target, ast.Name) and not stmt.orelse):
        return None
    keys = stmt.iter.elts if isinstance(stmt.iter, ast.List | ast.Tuple) else []
    only = stmt.body[0] if len(stmt.body) == 1 else None
    call = only.value if isinstance(only, ast.Expr) else None
    if not (0 < len(keys) <= MAX_UNROLL and isinstance(call, ast.Call)):
        return None
    func = call.func
    if not (
        isinstance(func, ast.Subscript)
        and isinstance(func.slice, ast.Name)
        and func.slice.id == stmt.target.id
    ):
        return None
    table = func.value
    if isinstance(table, ast.Name):
        table = tables.get(table.id, table)
    if not isinstance(table, ast.Dict):
        return None
    entries = {k.value: v for k, v in zip(table.keys, table.values, strict=True)
               if isinstance(k, ast.Constant)}  # fmt: skip
    if not all(isinstance(k, ast.Constant) and k.value in entries for k in keys):
        return None
    copied = [entries[k.value] for k in keys if isinstance(k, ast.Constant)]
    if not _afford(work, [*copied, *[*call.args, *call.keywords] * len(keys)]):
        return None
    return [
        ast.Expr(
            ast.Call(
                copy.deepcopy(entries[k.value]),
                copy.deepcopy(call.args),
                copy.deepcopy(call.keywords),
            )
        )
        for k in keys
        if isinstance(k, ast.Constant)
    ]


def _afford(work: Work, copies: list[ast.AST]) -> bool:
    """Spend one unit of `work` per node of the copies to be made: False once it is spent."""
    try:
        for node in copies:
            for _ in ast.walk(node):
                work.spend()
    except WorkExhausted:
        return False
    return True


def _procedures(body: list[ast.stmt]) -> list[ast.stmt]:
    """Each procedure called once, as a top-level statement, replaced by its body."""
    defs = {s.name: s for s in body if isinstance(s, ast.FunctionDef) and _is_procedure(s)}
    if not defs:
        return body
    named = Counter(n.id for s in body for n in ast.walk(s) if isinstance(n, ast.Name))
    out: list[ast.stmt] = []
    placed: set[str] = set()
    for stmt in body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not isinstance(call, ast.Call):
            out.append(stmt)
            continue
        name = call.func.id if isinstance(call.func, ast.Name) else ""
        proc = defs.get(name)
        if proc is None or named[name] != 1 or call.keywords:
            out.append(stmt)
            continue
        params = [a.arg for a in proc.args.args]
        if len(params) != len(call.args) or any(isinstance(a, ast.Starred) for a in call.args):
            out.append(stmt)
            continue
        for param, arg in zip(params, call.args, strict=True):
            if not (isinstance(arg, ast.Name) and arg.id == param):
                out.append(ast.Assign(targets=[ast.Name(param, ast.Store())], value=arg))
        out += [s for s in proc.body if not isinstance(s, ast.Global)]  # no-ops at the top
        placed.add(name)
    return [s for s in out if not (isinstance(s, ast.FunctionDef) and s.name in placed)]


def _is_procedure(node: ast.FunctionDef) -> bool:
    """Plain positional parameters, no decorator, and no `return`, `yield` or nested def."""
    args = node.args
    if node.decorator_list or args.vararg or args.kwarg or args.kwonlyargs or args.defaults:
        return False
    if args.posonlyargs:
        return False
    inner = (ast.Return, ast.Yield, ast.YieldFrom, ast.FunctionDef, ast.AsyncFunctionDef)
    return not any(isinstance(n, inner) for s in node.body for n in ast.walk(s))


class _Namespaces(ast.NodeTransformer):
    """`name["key"]` (a constant identifier key) reads as the name `name_key`."""

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        key = node.slice
        if (
            isinstance(node.value, ast.Name)
            and isinstance(key, ast.Constant)
            and isinstance(key.value, str)
            and key.value.isidentifier()
        ):
            return ast.copy_location(ast.Name(f"{node.value.id}_{key.value}", node.ctx), node)
        return node
