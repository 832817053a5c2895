"""An import built at run time reaches for its module: search over how the name is built.

A program can name a module to `__import__` or `importlib.import_module` (or any name bound to
them) with a string built from constants (pieces, reversal, character codes, bytes, joins,
templates, an entry of a dict or list, a loop over a literal), or hand exec an import statement
so built. Whatever pure string operations build the name, the escape detector reads the module,
and with it the resource it reaches (docs/metrics.md, escape attempts).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.observability.analysis import RunData
from swarmlab.observability.analysis._code import read_code
from swarmlab.observability.analysis._data import ProgramInfo
from swarmlab.observability.analysis._detectors import RESOURCE_OF_MODULE, RunView, escape_attempts

NAMES: dict[str, Callable[[str, int], str]] = {
    "constant": lambda name, cut: repr(name),
    "pieces": lambda name, cut: f"{name[:cut]!r} + {name[cut:]!r}",
    "reversed": lambda name, cut: f"{name[::-1]!r}[::-1]",
    "reversed join": lambda name, cut: f"''.join(reversed({name[::-1]!r}))",
    "char codes": lambda name, cut: f"''.join(chr(c) for c in {[ord(c) for c in name]})",
    "map chr": lambda name, cut: f"''.join(map(chr, {[ord(c) for c in name]}))",
    "bytes": lambda name, cut: f"bytes({[ord(c) for c in name]}).decode()",
    "joined list": lambda name, cut: f"''.join({[name[:cut], name[cut:]]!r})",
    "percent": lambda name, cut: f"{name[:cut] + '%s'!r} % {name[cut:]!r}",
    "percent keyed": lambda name, cut: (
        f"'%(a)s%(b)s' % {{'a': {name[:cut]!r}, 'b': {name[cut:]!r}}}"
    ),
    "format": lambda name, cut: f"'{{}}{{x}}'.format({name[:cut]!r}, x={name[cut:]!r})",
    "f-string": lambda name, cut: f'f"{name[:cut]}{{{name[cut:]!r}}}"',
    "dict entry": lambda name, cut: f"{{'files': {name!r}, 'n': 1}}['files']",
    "dict get": lambda name, cut: f"{{'k': {name!r}}}.get('k')",
    "list entry": lambda name, cut: f"['x', {name!r}][1]",
}
CALLS = {
    "dunder": lambda expr: f"m = __import__({expr})",
    "importlib": lambda expr: f"import importlib\nm = importlib.import_module({expr})",
    "bound name": lambda expr: f"n = {expr}\nm = __import__(n)",
    "exec": lambda expr: f"exec('import ' + {expr})",
    "dunder bound to a name": lambda expr: f"loader = __import__\nm = loader({expr})",
    "alias of an alias": lambda expr: f"a = __import__\nb = a\nm = b({expr})",
    "importlib as": lambda expr: f"import importlib as il\nm = il.import_module({expr})",
    "import_module as": lambda expr: f"from importlib import import_module as im\nm = im({expr})",
    "method bound": lambda expr: f"import importlib\nload = importlib.import_module\nload({expr})",
    "getattr": lambda expr: f"import builtins\nm = getattr(builtins, '__import__')({expr})",
    "table of names": lambda expr: f"T = {{'a': {expr}}}\nfor k in T:\n    __import__(T[k])",
    "keys of a table": lambda expr: f"T = {{{expr}: 1}}\nfor k in T:\n    __import__(k)",
    "loop over names": lambda expr: f"for n in ['math', {expr}]:\n    __import__(n)",
    "values of a table": lambda expr: (
        f"T = {{'x': {expr}}}\nfor v in T.values():\n    __import__(v)"
    ),
}


def _escapes(code: str) -> list[str]:
    program = ProgramInfo("p0", None, 0, "", code, "crashed", 1.0)
    data = RunData(source="t", run_id="t", scaffold=True, programs=[program], calls=[],
                   outcome={})  # fmt: skip
    return escape_attempts(RunView(data)).get("p0", [])


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(RESOURCE_OF_MODULE)),
    st.sampled_from(sorted(NAMES)),
    st.sampled_from(sorted(CALLS)),
    st.integers(0, 20),
)
def test_a_module_named_by_a_string_built_from_constants_is_reached(
    module: str, naming: str, call: str, cut: int
) -> None:
    code = CALLS[call](NAMES[naming](module, cut % (len(module) + 1)))
    assert module in read_code(code).imports, code
    assert RESOURCE_OF_MODULE[module] in _escapes(code), code


def test_a_pure_module_named_so_reaches_only_the_import_machinery() -> None:
    assert _escapes("m = __import__('ma' + 'th')") == ["interpreter"]
    assert _escapes("log('__import__ is not called here: ' + 'os')") == []


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(RESOURCE_OF_MODULE)),
    st.sampled_from(sorted(NAMES)),
    st.integers(0, 20),
)
def test_a_name_that_is_not_an_import_function_imports_nothing(
    module: str, naming: str, cut: int
) -> None:
    """The same names handed to a function that imports nothing are no attempt."""
    expr = NAMES[naming](module, cut % (len(module) + 1))
    code = f"def loader(n):\n    return n\nm = loader({expr})\nlog(str(m))"
    assert module not in read_code(code).imports, code
