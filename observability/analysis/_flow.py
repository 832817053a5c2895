"""A program's code in a normal form that undoes two ways of hiding a copy: temporaries and exec.

Re-creation is judged on shapes (`swarmlab.core.shape_recreation`), which are blind to names,
comments, layout and line order but see how expressions are nested. Two rewrites change the
nesting without changing what a program does, so the quine detector also compares programs in
this normal form:

- **Single-use temporaries go back where they are used.** `q = p + "x"; a = run_ai(q)` reads as
  `a = run_ai(p + "x")` when `q` is bound once and read once. Applied on both sides, so a copy
  that splits every nested call into temporaries and its ancestor meet in the same form.
- **Code a program hands `exec`, `eval` or `compile` is its own.** A string passed to one of
  them is parsed, normalised the same way and appended, when it can be rebuilt from the syntax
  tree without running anything (`_texts.text_of`: a constant, a name bound once, or pure
  string operations on those: concatenation, reversal, character codes, joins of a list of
  lines, `%`/`format`/f-string templates filled with constants, a dict or list lookup). The
  sandbox runs `exec` inside its worker and shows the host nothing, so this reading is the only
  way to recover it. Code carried in a string for a *child* (`spawn`) stays the child's (the
  child's own code is in the record).

- **A list built by a loop is the comprehension it is.** `xs = []` followed by `for v in it:
  xs.append(e)` (optionally under one `if`) reads as `xs = [e for v in it]`, so a re-creation
  written as one comprehension meets a loop-built ancestor.
- **`map` and `filter` over a `lambda` are the comprehensions they are.** `map(lambda v: e,
  it)` reads as `[e for v in it]`, `filter(lambda v: c, it)` as `[v for v in it if c]`, and
  `list(...)` around a comprehension as the comprehension, so a pipeline written in a functional
  style meets the same steps written as comprehensions or loops.
- **Helpers are written out** (`_unfold`): a dispatch table called over its keys is its calls
  in order, a procedure called once is its body in place, a dict used as a namespace reads as
  names; a pipeline of helpers meets the same steps written as straight code.

`ast.unparse` writes the result, so a call re-flowed over several lines also reads as one.
The work is the CPython parser and a few linear walks, bounded by `MAX_FLOW_CHARS`, and the two
passes that are not plain walks spend from budgets of work (`_work.Work`): reading the texts
handed exec (`_texts.TextReader`, linear in the code) and unrolling dispatch loops
(`_unfold.MAX_UNROLLED_NODES`). This runs in the analysis (a report), never on a runner.
Code that does not parse, nests too deeply or is longer than the bound has no normal form
(`None`), and the plain shape alone decides.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Callable

from ._texts import MAX_DECODE_DEPTH, MAX_FLOW_CHARS, TextReader
from ._unfold import unfold
from ._work import Work

MAX_EXEC_CODE = 4
"""How many strings handed to exec/eval/compile are read per program (one level deep)."""
_EXEC_NAMES = frozenset({"exec", "eval", "compile"})
_IMPORT_CALLS = frozenset({"__import__", "import_module"})
_IMPORT_WORDS = ("__import__", "import_module", "exec", "eval", "compile")


def flow_form(code: str) -> str | None:
    """The normal form of a program (see the module's docstring), or None without one."""
    found = flow_with_statements(code)
    return found[0] if found else None


def flow_with_statements(code: str, work: Work | None = None) -> tuple[str, int, int] | None:
    """The normal form; how many top-level statements the program and the code it hands exec
    had as written (before any rewrite); and how many the normal form has (temporaries put
    back: `lead = run_ai(p)` then `wait(spawn(lead))` is one). None without a normal form.
    The texts handed exec are read under `work` (by default `Work.for_source` of the code)."""
    if len(code) > MAX_FLOW_CHARS:
        return None
    try:
        tree = ast.parse(code)
        reader = TextReader(_once(tree), work or Work.for_source(len(code)))
        carried = [ast.parse(text) for text in _exec_strings(tree, reader)]
        statements = len(tree.body) + sum(len(t.body) for t in carried)
        steps = (_Functional().visit, _inline, _comprehend, unfold, _inline)
        normal = [_apply(steps, t) for t in (tree, *carried)]
        parts = [ast.unparse(t) for t in normal]
        return "\n".join(parts), statements, sum(len(t.body) for t in normal)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _apply(steps: tuple[Callable[[ast.Module], ast.Module], ...], tree: ast.Module) -> ast.Module:
    for step in steps:
        tree = step(tree)
    return tree


def _exec_strings(tree: ast.Module, reader: TextReader) -> list[str]:
    """Code the program hands exec/eval/compile (at most MAX_EXEC_CODE), where it can be read
    without running anything (`_texts.TextReader`, under its budget of work)."""
    calls: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in _EXEC_NAMES:
                calls.append(node.args[0])
    found = [reader.text(arg) for arg in calls[: 4 * MAX_EXEC_CODE]]
    return [text for text in found if text is not None][:MAX_EXEC_CODE]


def modules_named(code: str, work: Work | None = None) -> frozenset[str]:
    """Top-level modules a program imports by a string built from constants (`__import__`,
    `importlib.import_module`, under any name bound to them: `_import_functions`; the name
    read by `_texts.TextReader.texts`: pieces, templates, a dict or list of names, a loop over a
    literal), or in code it hands exec: an import built at run time reaches for its module,
    whether or not the sandbox lets it run. Empty for programs without a normal form (longer
    than MAX_FLOW_CHARS, or not parsed). Texts are read under `work` (by default
    `Work.for_source` of the code)."""
    if len(code) > MAX_FLOW_CHARS or not any(word in code for word in _IMPORT_WORDS):
        return frozenset()
    try:
        tree = ast.parse(code)
        once, loops = _bindings(tree)
        reader = TextReader(once, work or Work.for_source(len(code)))
        named = _imported_names(tree, reader, loops)
        for text in _exec_strings(tree, reader):
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.Import):
                    named += [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    named.append(node.module)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    return frozenset(m.strip().split(".")[0] for m in named if m.strip())


def _imported_names(tree: ast.Module, reader: TextReader, loops: dict[str, ast.expr]) -> list[str]:
    """The names the program hands an import function, each value it can be."""
    functions = _import_functions(tree, reader)
    named: list[str] = []
    calls = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and _is_import(node.func, functions, reader):
            named += reader.texts(node.args[0], loops)
            calls += 1
            if calls >= 4 * MAX_EXEC_CODE:
                break
    return named


def _once(tree: ast.Module) -> dict[str, ast.expr]:
    """Names bound once by `name = value`, each to its value."""
    bound: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(node.value)
    return {name: values[0] for name, values in bound.items() if len(values) == 1}


def _bindings(tree: ast.Module) -> tuple[dict[str, ast.expr], dict[str, ast.expr]]:
    """Names bound once by `name = value`, and loop variables over one literal."""
    bound: set[str] = set()
    loops: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Name):
            loops.setdefault(node.target.id, []).append(node.iter)
    once = _once(tree)
    over = {name: iters[0] for name, iters in loops.items() if len(iters) == 1}
    return once, {n: _literal(it, once) for n, it in over.items() if n not in bound}


def _literal(node: ast.expr, once: dict[str, ast.expr]) -> ast.expr:
    """The literal a loop runs over: itself or a name bound to it (a dict gives its keys), or
    `table.values()`, `table.keys()`."""
    func = node.func if isinstance(node, ast.Call) and not node.args else None
    values = isinstance(func, ast.Attribute) and func.attr == "values"
    if isinstance(func, ast.Attribute) and func.attr in ("values", "keys"):
        node = func.value
    if isinstance(node, ast.Name) and node.id in once:
        node = once[node.id]
    if isinstance(node, ast.Dict):
        return ast.List(elts=[v for v in node.values] if values else [k for k in node.keys if k])
    return node


def _import_functions(tree: ast.Module, reader: TextReader) -> frozenset[str]:
    """Names that hold an import function: `__import__`, `import_module` (as imported, under
    its alias), and every name bound to one (`loader = __import__`, `im = il.import_module`)."""
    names = {"__import__", "import_module"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("importlib", "builtins"):
            names |= {a.asname for a in node.names if a.asname and a.name in _IMPORT_CALLS}
    for _ in range(MAX_DECODE_DEPTH):  # a chain of aliases, each bound to the one before
        more = {
            n for n, v in reader.once.items() if n not in names and _is_import(v, names, reader)
        }
        if not more:
            break
        names |= more
    return frozenset(names)


def _is_import(func: ast.expr, names: set[str] | frozenset[str], reader: TextReader) -> bool:
    """An expression that is an import function: a name holding one, `x.import_module`,
    `x.__import__`, or `getattr(x, "import_module")`."""
    if isinstance(func, ast.Name):
        return func.id in names
    if isinstance(func, ast.Attribute):
        return func.attr in _IMPORT_CALLS
    if isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and len(func.args) == 2:
        return func.func.id == "getattr" and reader.text(func.args[1]) in _IMPORT_CALLS
    return False


def _comprehend(tree: ast.Module) -> ast.Module:
    """Write each list built by a loop as the comprehension it is: `xs = []` followed by
    `for v in it: xs.append(e)` (or `if c: xs.append(e)` in the loop) becomes
    `xs = [e for v in it if c]`, in every statement list (one walk)."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list) and len(stmts) > 1:
                setattr(node, field, _comprehend_list(stmts))
    return tree


def _comprehend_list(stmts: list[ast.stmt]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for stmt in stmts:
        previous = out[-1] if out else None
        built = _loop_append(previous, stmt) if isinstance(previous, ast.Assign) else None
        if built is not None and isinstance(previous, ast.Assign):
            previous.value = built
        else:
            out.append(stmt)
    return out


def _loop_append(start: ast.Assign, loop: ast.stmt) -> ast.ListComp | None:
    """The comprehension `start` (`xs = []`) and `loop` build together, or None."""
    target = start.targets[0] if len(start.targets) == 1 else None
    if not (isinstance(target, ast.Name) and isinstance(start.value, ast.List)):
        return None
    if start.value.elts or not isinstance(loop, ast.For) or loop.orelse or len(loop.body) != 1:
        return None
    body, ifs = loop.body[0], []
    if isinstance(body, ast.If) and not body.orelse and len(body.body) == 1:
        ifs, body = [body.test], body.body[0]
    call = body.value if isinstance(body, ast.Expr) else None
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "append"
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == target.id
        and len(call.args) == 1
        and not call.keywords
    ):
        return None
    loop_of = ast.comprehension(target=loop.target, iter=loop.iter, ifs=ifs, is_async=0)
    return ast.ListComp(elt=call.args[0], generators=[loop_of])


class _Functional(ast.NodeTransformer):
    """`map`/`filter` over a one-argument `lambda` as a comprehension; `list(comprehension)` as
    the comprehension (inner calls first, so `list(filter(f, map(g, it)))` nests both)."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func.id if isinstance(node.func, ast.Name) else ""
        if node.keywords:
            return node
        if func in ("list", "tuple") and len(node.args) == 1:
            only = node.args[0]
            return only if isinstance(only, ast.ListComp) else node
        lam = node.args[0] if func in ("map", "filter") and len(node.args) == 2 else None
        if not isinstance(lam, ast.Lambda) or not _one_argument(lam.args):
            return node
        var = ast.Name(id=lam.args.args[0].arg, ctx=ast.Store())
        loop = ast.comprehension(target=var, iter=node.args[1], ifs=[], is_async=0)
        if func == "map":
            return ast.ListComp(elt=lam.body, generators=[loop])
        loop.ifs = [lam.body]
        return ast.ListComp(elt=ast.Name(id=var.id, ctx=ast.Load()), generators=[loop])


def _one_argument(args: ast.arguments) -> bool:
    plain = len(args.args) == 1 and not args.posonlyargs and not args.kwonlyargs
    return plain and args.vararg is None and args.kwarg is None and not args.defaults


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
