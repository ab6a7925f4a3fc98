"""The project's import graph, measured statically (ast, nothing is imported).

    .venv/bin/python scripts/import_graph.py            # summary: wings, cross edges, cycles, in-function imports
    .venv/bin/python scripts/import_graph.py --edges    # every module -> module edge, one a line

Why static: importing every module to trace it would run the app's start-up code and hide the
imports that sit inside functions, which are exactly the ones the house plan wants to see.
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agents", "crm_core", "orchestration", "api", "ui", "pages", "bench", "scripts", "tests")
SKIP_DIRS = {".venv", "__pycache__", ".git", "migrations"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    in_function: str | None  # the enclosing function's name, None at module level
    type_only: bool = False  # under `if TYPE_CHECKING:`: never runs, so it makes no runtime cycle


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_files(root: Path = ROOT) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if rel[0] not in PACKAGES and len(rel) > 1:
            continue
        if SKIP_DIRS.intersection(rel):
            continue
        out.append(path)
    return out


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest known module that `name` (a dotted import target) lies in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def edges(root: Path = ROOT) -> tuple[set[str], list[Edge]]:
    files = project_files(root)
    modules = {module_name(p, root) for p in files}
    found: list[Edge] = []
    for path in files:
        source = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import mod` names a module when pkg.mod is one; else the package itself.
                targets = [f"{node.module}.{a.name}" for a in node.names]
            if not targets:
                continue
            func, type_only, up = None, False, parents.get(node)
            while up is not None:
                if isinstance(up, ast.If) and "TYPE_CHECKING" in ast.unparse(up.test):
                    type_only = True
                if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)) and func is None:
                    func = up.name
                up = parents.get(up)
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved and resolved != source:
                    found.append(Edge(source, resolved, node.lineno, func, type_only))
    # `from pkg import a, b` naming two things of one module is one edge, not two.
    return modules, sorted(set(found), key=lambda e: (e.source, e.line, e.target))


def wing(module: str) -> str:
    """The top package, with agents/ split into its two halves (issue 19's measure)."""
    top = module.split(".")[0]
    if top != "agents":
        return top
    # Where the machinery sat before the house plan moved it to orchestration/.
    machinery = ("agents.runner", "agents.scheduler", "agents.backtest", "agents.cli", "agents.__main__")
    return "agents(machinery)" if module.startswith(machinery) else "agents(reasoning)"


def strongly_connected(nodes: set[str], graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan, iteratively (the graph is deep enough to hit the recursion limit on some layouts)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
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
                    out.append(sorted(component))
    return out


def summary(modules: set[str], found: list[Edge]) -> str:
    app = [e for e in found if e.source.split(".")[0] not in ("tests", "bench", "scripts")]
    lines = [f"modules: {len(modules)}; import edges (project modules only): {len(found)}"]

    lines.append("\n## wing -> wing (module-level + in-function edges, app code only)")
    pair = Counter((wing(e.source), wing(e.target)) for e in app if wing(e.source) != wing(e.target))
    for (a, b), n in sorted(pair.items()):
        lines.append(f"  {a:20} -> {b:20} {n}")

    lines.append("\n## crm_core modules that import agents")
    up = defaultdict(set)
    for e in app:
        if e.source.startswith("crm_core") and e.target.startswith("agents"):
            up[e.source].add(e.target + (" (in function)" if e.in_function else ""))
    for src in sorted(up):
        lines.append(f"  {src}: {', '.join(sorted(up[src]))}")
    lines.append(f"  -> {len(up)} crm_core modules")

    lines.append("\n## crm_core modules that import orchestration")
    for src in sorted({e.source for e in app if e.source.startswith("crm_core") and e.target.startswith("orchestration")}):
        lines.append(f"  {src}")

    lines.append("\n## reasoning-wing agents modules that import crm_core")
    down = defaultdict(set)
    for e in app:
        if wing(e.source) == "agents(reasoning)" and e.target.startswith("crm_core"):
            down[e.source].add(e.target + (" (in function)" if e.in_function else ""))
    for src in sorted(down):
        lines.append(f"  {src}: {', '.join(sorted(down[src]))}")
    lines.append(f"  -> {len(down)} reasoning modules")

    lines.append("\n## cycles (strongly connected groups of app modules, runtime edges: TYPE_CHECKING left out)")
    graph: dict[str, set[str]] = defaultdict(set)
    for e in app:
        if not e.type_only:
            graph[e.source].add(e.target)
    app_nodes = {m for m in modules if m.split(".")[0] not in ("tests", "bench", "scripts")}
    for comp in strongly_connected(app_nodes, graph):
        lines.append(f"  [{len(comp)}] " + ", ".join(comp))
    top_graph: dict[str, set[str]] = defaultdict(set)
    for e in app:
        if wing(e.source) != wing(e.target):
            top_graph[wing(e.source)].add(wing(e.target))
    wings = {wing(m) for m in app_nodes}
    lines.append("  wing-level cycles: " + ("; ".join(" <-> ".join(c) for c in strongly_connected(wings, top_graph)) or "none"))
    typed = sorted({(e.source, e.target) for e in app if e.type_only})
    lines.append("  TYPE_CHECKING-only edges: " + ", ".join(f"{a} -> {b}" for a, b in typed))

    lines.append("\n## imports inside functions (project modules as targets)")
    infunc = [e for e in found if e.in_function]
    by_top = Counter(e.source.split(".")[0] for e in infunc)
    lines.append("  " + ", ".join(f"{k}: {v}" for k, v in sorted(by_top.items())))
    for e in sorted(infunc, key=lambda e: (e.source, e.line)):
        if e.source.split(".")[0] in ("tests", "bench", "scripts"):
            continue
        lines.append(f"  {e.source}:{e.line} {e.in_function}() -> {e.target}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="print every edge")
    parser.add_argument("--root", type=Path, default=ROOT, help="another checkout (e.g. main before the moves)")
    args = parser.parse_args(argv)
    modules, found = edges(args.root.resolve())
    if args.edges:
        for e in sorted(found, key=lambda e: (e.source, e.line, e.target)):
            where = (f" in {e.in_function}()" if e.in_function else "") + (" TYPE_CHECKING" if e.type_only else "")
            print(f"{e.source} -> {e.target} (line {e.line}{where})")
    else:
        print(summary(modules, found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
