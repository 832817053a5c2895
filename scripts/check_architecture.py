"""The architecture's rules, executable: layers, independence, cycles, one-home imports, sizes.

Reads `[tool.swarmlab.architecture]` and the package mapping (`[tool.setuptools.package-dir]`)
from pyproject.toml, parses every module of the installed layout with `ast` (no import runs),
and checks:

- layers: a package imports only packages of its own layer or of layers below (top first);
  packages of one layer are independent (never import each other), and the pairs listed under
  `independent` never import each other either, whatever their layers;
- no import cycle between the sub-packages of `swarmlab`, nor between modules;
- homes: each heavy dependency is imported only in the modules named for it;
- sizes: no module over `max_module_lines`, no function over `max_function_lines`.

Every import counts, including those inside functions and under `if TYPE_CHECKING:`.
Usage: python scripts/check_architecture.py [PROJECT_DIR]; prints each broken rule, exit 1 if any.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT_PACKAGE = "swarmlab"


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: set[str] = field(default_factory=set)
    """Absolute names this module imports (modules and, for `from x import y`, `x.y`)."""
    lines: int = 0
    longest_function: tuple[int, str] = (0, "")


@dataclass
class Contract:
    layers: list[list[str]]
    independent: list[tuple[str, str]]
    homes: dict[str, list[str]]
    max_module_lines: int
    max_function_lines: int


def load(project: Path) -> tuple[dict[str, Module], Contract]:
    config = tomllib.loads((project / "pyproject.toml").read_text())
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    rules = config["tool"]["swarmlab"]["architecture"]
    contract = Contract(
        layers=[[p.strip() for p in layer] for layer in rules["layers"]],
        independent=[(a, b) for a, b in rules.get("independent", [])],
        homes={k: list(v) for k, v in rules.get("homes", {}).items()},
        max_module_lines=int(rules.get("max_module_lines", 500)),
        max_function_lines=int(rules.get("max_function_lines", 60)),
    )
    return discover(project, mapping), contract


def discover(project: Path, mapping: dict[str, str]) -> dict[str, Module]:
    """Every module of the installed layout, by its import name."""
    modules: dict[str, Module] = {}
    # The deepest mapping wins, so a folder mapped elsewhere is not read twice.
    roots = sorted(mapping.items(), key=lambda kv: -kv[0].count("."))
    claimed: set[Path] = set()
    for package, folder in roots:
        base = (project / folder).resolve()
        for path in sorted(base.rglob("*.py")):
            if path in claimed or any(p in claimed for p in path.parents if p != base):
                continue
            rel = path.relative_to(base).with_suffix("")
            parts = [] if rel.name == "__init__" and rel.parent == Path(".") else list(rel.parts)
            if parts and parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            modules[name] = Module(name, path, path.name == "__init__.py")
        claimed.add(base)
    for module in modules.values():
        _read(module, modules)
    return modules


def _read(module: Module, modules: dict[str, Module]) -> None:
    text = module.path.read_text(encoding="utf-8")
    module.lines = text.count("\n") + 1
    tree = ast.parse(text, str(module.path))
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            module.imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                head = parts[: len(parts) - (node.level - 1)]
                base = ".".join(head + ([node.module] if node.module else []))
            module.imports.add(base)
            module.imports.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > module.longest_function[0]:
                module.longest_function = (length, node.name)


def internal_edges(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the swarmlab modules it imports."""
    return {
        name: {t for t in m.imports if t in modules and t != name} for name, m in modules.items()
    }


def owner(name: str, packages: list[str]) -> str | None:
    """The most specific contract package a module belongs to."""
    best = None
    for package in packages:
        if (name == package or name.startswith(package + ".")) and (
            best is None or len(package) > len(best)
        ):
            best = package
    return best


def check(modules: dict[str, Module], contract: Contract) -> list[str]:
    problems: list[str] = []
    problems += check_layers(modules, contract)
    problems += check_cycles(modules)
    problems += check_homes(modules, contract)
    problems += check_sizes(modules, contract)
    return problems


def check_layers(modules: dict[str, Module], contract: Contract) -> list[str]:
    layer_of = {p: i for i, layer in enumerate(contract.layers) for p in layer}
    packages = list(layer_of)
    apart = {frozenset(pair) for pair in contract.independent}
    problems = []
    # A package that only holds layered sub-packages (swarmlab.observability) is a container.
    containers = {".".join(p.split(".")[:i]) for p in packages for i in range(1, p.count(".") + 1)}
    unplaced = sorted(n for n in modules if n not in containers and owner(n, packages) is None)
    problems += [f"layers: {n} belongs to no layer of the contract" for n in unplaced]
    for source, targets in internal_edges(modules).items():
        a = owner(source, packages)
        if a is None:
            continue  # the root facade, a container, or a module reported above
        for target in sorted(targets):
            b = owner(target, packages)
            if b is None or a == b:
                continue
            if layer_of[a] > layer_of[b]:
                problems.append(f"layers: {source} imports {target} ({a} is below {b})")
            elif layer_of[a] == layer_of[b]:
                problems.append(f"layers: {source} imports {target} (same layer: independent)")
            elif frozenset((a, b)) in apart:
                problems.append(f"independence: {source} imports {target} ({a} and {b})")
    return problems


def check_cycles(modules: dict[str, Module]) -> list[str]:
    edges = internal_edges(modules)
    problems = []

    def top(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2])

    package_graph: dict[str, set[str]] = {}
    for source, targets in edges.items():
        if source == ROOT_PACKAGE:
            continue
        package_graph.setdefault(top(source), set())
        for target in targets:
            if target != ROOT_PACKAGE and top(target) != top(source):
                package_graph[top(source)].add(top(target))
    for cycle in strongly_connected(package_graph):
        problems.append(f"cycle between packages: {' -> '.join(sorted(cycle))}")
    # Modules, ignoring package facades (an __init__ that re-exports its own modules).
    module_graph = {
        s: {t for t in ts if not modules[t].is_package}
        for s, ts in edges.items()
        if not modules[s].is_package
    }
    for cycle in strongly_connected(module_graph):
        problems.append(f"cycle between modules: {' -> '.join(sorted(cycle))}")
    return problems


def strongly_connected(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Tarjan's algorithm, iterative; yields every component of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield component


def check_homes(modules: dict[str, Module], contract: Contract) -> list[str]:
    problems = []
    for name, module in sorted(modules.items()):
        for dependency, homes in contract.homes.items():
            used = any(i == dependency or i.startswith(dependency + ".") for i in module.imports)
            allowed = any(name == h or name.startswith(h + ".") for h in homes)
            if used and not allowed:
                where = ", ".join(homes) or "nowhere"
                problems.append(f"homes: {name} imports {dependency} (allowed only in {where})")
    return problems


def check_sizes(modules: dict[str, Module], contract: Contract) -> list[str]:
    problems = []
    for name, module in sorted(modules.items()):
        if module.lines > contract.max_module_lines:
            problems.append(
                f"sizes: {name} has {module.lines} lines (at most {contract.max_module_lines})"
            )
        length, function = module.longest_function
        if length > contract.max_function_lines:
            problems.append(
                f"sizes: {name}.{function} has {length} lines "
                f"(at most {contract.max_function_lines})"
            )
    return problems


def main(argv: list[str]) -> int:
    project = Path(argv[0] if argv else ".").resolve()
    modules, contract = load(project)
    problems = check(modules, contract)
    for problem in problems:
        print(problem)
    packages = {owner(n, [p for layer in contract.layers for p in layer]) for n in modules}
    verdict = "broken" if problems else "ok"
    print(
        f"architecture {verdict}: {len(modules)} modules in {len(packages - {None})} packages, "
        f"{len(contract.layers)} layers, {len(problems)} problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
