"""The house plan's import rules (docs/HOUSE-PLAN.md), checked statically over every file.

Arrows point one way: orchestration -> crm_core -> agents, orchestration -> agents. So:
- nothing under agents/ imports the store (crm_core), a database driver or the dashboard;
- nothing under agents/ or crm_core/ imports orchestration.

Read with ast, nothing imported: imports inside functions, under `if TYPE_CHECKING:` and the
module names given to `importlib.import_module("...")` count as much as the ones at the top,
because each is an arrow all the same. What still breaks a rule is listed in KNOWN_DEBT, which can
only shrink: an entry whose import is gone fails the test too, so the list is kept true.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_AGENTS = ("crm_core", "orchestration", "sqlalchemy", "psycopg", "alembic", "streamlit", "api", "ui",
                       "pages")
FORBIDDEN_IN_STORE = ("orchestration",)

# (importing module, imported top-level name) pairs that still break a rule, with the piece of the
# plan that removes them. Empty it, entry by entry, as the pieces land.
KNOWN_DEBT: frozenset[tuple[str, str]] = frozenset()


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported_names(path: Path) -> set[str]:
    """Every module name the file imports, wherever the import sits, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, path)
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                if node.module:
                    names.add(f"{base}.{node.module}")
                else:  # from . import sibling
                    names.update(f"{base}.{alias.name}" for alias in node.names)
            elif node.module:
                names.add(node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == "import_module" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
                elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                    names.add(str(arg.values[0].value).rstrip("."))  # f"agents.{name}": its fixed head
    return names


def violations(package: str, forbidden: tuple[str, ...]) -> set[tuple[str, str]]:
    found = set()
    for path in sorted((ROOT / package).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        for name in imported_names(path):
            top = name.split(".", 1)[0]
            if top in forbidden:
                found.add((_module(path), top))
    return found


def test_the_reasoning_wing_imports_nothing_of_the_store_the_machinery_or_the_dashboard():
    found = violations("agents", FORBIDDEN_IN_AGENTS)
    new = sorted(found - KNOWN_DEBT)
    assert not new, "agents/ must stay pure reasoning; these modules reach into other layers: " + ", ".join(
        f"{m} imports {t}" for m, t in new)


def test_the_known_debt_list_only_holds_imports_that_still_exist():
    gone = sorted(KNOWN_DEBT - violations("agents", FORBIDDEN_IN_AGENTS))
    assert not gone, f"these entries are paid off: remove them from KNOWN_DEBT: {gone}"


def test_neither_the_reasoning_nor_the_store_imports_the_machinery_on_top():
    found = violations("agents", FORBIDDEN_IN_STORE) | violations("crm_core", FORBIDDEN_IN_STORE)
    assert not found, "orchestration sits on top; nothing below may import it: " + ", ".join(
        f"{m} imports {t}" for m, t in sorted(found))


def test_the_machinery_left_the_reasoning_wing():
    # What the move took out of agents/ must not come back beside the agents.
    for gone in ("runner.py", "__main__.py", "scheduler", "backtest", "cli"):
        assert not (ROOT / "agents" / gone).exists(), f"agents/{gone} belongs in orchestration/"


def test_the_rules_see_imports_inside_functions_type_checking_blocks_and_importlib(tmp_path, monkeypatch):
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    pkg = tmp_path / "agents"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sneaky.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "if TYPE_CHECKING:\n"
        "    from crm_core.models import Contact\n"
        "def later():\n"
        "    import sqlalchemy\n"
        "    return importlib.import_module(f'orchestration.{1}')\n"
        "from . import sibling\n"
    )
    assert violations("agents", FORBIDDEN_IN_AGENTS) == {
        ("agents.sneaky", "crm_core"), ("agents.sneaky", "sqlalchemy"), ("agents.sneaky", "orchestration")}
    assert "agents.sibling" in imported_names(pkg / "sneaky.py")



def run_time_lookups(path: Path) -> set[str]:
    """`importlib`, `sys` and the names that find a module by a string at run time (`import_module`,
    `sys.modules`) in one file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in ("importlib", "sys"))
        elif isinstance(node, ast.ImportFrom) and node.module in ("importlib", "sys"):
            found.add(node.module)
        elif isinstance(node, ast.Attribute) and node.attr in ("import_module", "modules"):
            found.add(node.attr)
    return found


def test_agents_and_their_builders_are_named_statically_not_looked_up_at_run_time():
    # Piece B: the registries are written out, so a missing agent or builder fails at import, not mid-run.
    for rel in ("agents/registry.py", "crm_core/contexts/__init__.py", "crm_core/services/agent_ops.py",
                "orchestration/registry.py", "orchestration/cli/backtest.py", "agents/llm/output_checks.py"):
        found = run_time_lookups(ROOT / rel)
        assert not found, f"{rel} finds modules at run time ({', '.join(sorted(found))}): import them by name"
