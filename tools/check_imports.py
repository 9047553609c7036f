"""Check that the services import each other without cycles, and only at module level.

    python tools/check_imports.py [--root DIR] [--package bot.services]

Builds the graph of module-level imports among the modules of ``--package`` (``import a.b``,
``from a.b import c``, ``from a import b, c`` and relative forms; imports under ``if TYPE_CHECKING:``
count too) and prints every cycle. It also refuses any import of the project's own modules (``bot.*``,
or a relative one) inside a function or method body: such imports only hide a cycle. Exits 1 on
either, 0 with a one-line summary when the graph is clean. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: Path
    line: int


@dataclass
class Graph:
    package: str
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, dict[str, Edge]] = field(default_factory=dict)  # source -> target -> first import
    nested: list[str] = field(default_factory=list)  # function-level imports, as messages


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted name of each module directly in ``package`` (its ``__init__`` is the package itself)."""
    folder = root.joinpath(*package.split("."))
    if not folder.is_dir():
        raise SystemExit(f"check_imports: no package {package} under {root}")
    found = {}
    for path in sorted(folder.glob("*.py")):
        found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a ``from ... import`` reads from (resolving dots against ``module``)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
              modules: Container[str]) -> Iterator[str]:
    """The modules an import statement reads: ``from a import b`` is module ``a.b`` if there is one, else ``a``."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    source = _absolute(node, module, is_package)
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        yield submodule if submodule in modules else source


class _Visitor(ast.NodeVisitor):
    def __init__(self, graph: Graph, module: str, path: Path, own_top: str) -> None:
        self.graph, self.module, self.path, self.own_top = graph, module, path, own_top
        self.is_package = path.stem == "__init__"
        self.scopes: list[tuple[str, bool]] = []  # enclosing classes and functions: (name, is a function)

    def _scope(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.scopes.append((getattr(node, "name", "<lambda>"), not isinstance(node, ast.ClassDef)))
        self.generic_visit(node)
        self.scopes.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _scope

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        names = list(_imported(node, self.module, self.is_package, self.graph.modules))
        if any(is_function for _, is_function in self.scopes):
            relative = isinstance(node, ast.ImportFrom) and node.level > 0
            own = [n for n in names if n == self.own_top or n.startswith(self.own_top + ".")]
            if relative or own:
                where = ".".join(name for name, _ in self.scopes)
                self.graph.nested.append(f"{self.path}:{node.lineno}: import inside {where}(): {ast.unparse(node)}")
            return
        targets = self.graph.edges.setdefault(self.module, {})
        for name in names:
            if name in self.graph.modules and name != self.module and name not in targets:
                targets[name] = Edge(self.module, name, self.path, node.lineno)

    visit_Import = visit_ImportFrom = _import


def build(root: Path, package: str) -> Graph:
    graph = Graph(package, module_files(root, package))
    own_top = package.split(".")[0]
    for module, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        _Visitor(graph, module, shown, own_top).visit(tree)
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components with more than one module, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.edges.get(start, {}))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.edges.get(succ, {})))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
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
                    found.append(sorted(component))
    return sorted(found)


def a_cycle(graph: Graph, component: Sequence[str]) -> list[Edge]:
    """One concrete cycle through the first module of ``component`` (breadth-first, so a shortest one)."""
    members, start = set(component), component[0]
    came_from: dict[str, Edge] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target, edge in sorted(graph.edges.get(node, {}).items()):
            if target not in members:
                continue
            if target == start:
                path = [edge]
                while path[0].source != start:
                    path.insert(0, came_from[path[0].source])
                return path
            if target not in came_from:
                came_from[target] = edge
                queue.append(target)
    raise AssertionError("a strongly connected component always has a cycle")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the directory holding the top package")
    parser.add_argument("--package", default="bot.services", help="the package whose modules are checked")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    graph = build(root, args.package)
    problems = 0
    for component in strongly_connected(graph):
        problems += 1
        print(f"import cycle among {', '.join(component)}:")
        for edge in a_cycle(graph, component):
            print(f"  {edge.source} -> {edge.target}  ({edge.path}:{edge.line})")
    for message in graph.nested:
        problems += 1
        print(message)
    if problems:
        print(f"check_imports: {problems} problem(s) in {args.package}; the services import graph must be acyclic "
              "and every import of the project's modules must be at module level (see DEVELOPERS.md)")
        return 1
    edges = sum(len(targets) for targets in graph.edges.values())
    print(f"check_imports: {args.package}: {len(graph.modules)} modules, {edges} imports among them, "
          "no cycles, no function-level imports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
