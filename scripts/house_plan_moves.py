"""The mechanical half of the house plan (docs/HOUSE-PLAN.md): move files, rewrite every name.

    .venv/bin/python scripts/house_plan_moves.py             # do it in this checkout
    .venv/bin/python scripts/house_plan_moves.py --dry-run   # say what would change, change nothing

What it does, in order, each step idempotent (a second run changes nothing):
1. `git mv` every file of the table below (a folder moves with every tracked file in it on the
   day it runs, so modules added to main after the plan was written come along).
2. Writes the new packages' `__init__.py` (orchestration/, agents/common/) when missing.
3. Rewrites every tracked text file (code, tests, bench, scripts, Makefile, README, docs):
   - `from agents import runner`-style imports whose module now lives under another parent are
     rebuilt (`from orchestration import runner`), keeping the local name;
   - every dotted module name (`agents.scheduler.worker`, also inside strings: monkeypatch
     targets, `importlib` f-strings, `-m agents.scheduler` entry points, docstrings);
   - the CLI entry point `python -m agents run|eval|backtest` and its `"-m", "agents"` list form;
   - file paths in prose (`agents/runner.py`, `agents/scheduler/`).
4. Removes the folders the moves emptied (and their stale __pycache__, which would otherwise make
   an empty namespace package that still "imports").
5. Lists the modules under agents/ the table does not place: new files on main that need a home.

Golden data (tests/evals, tests/fixtures, data/) is never rewritten: decisions must stay
byte-identical, so no context text can change under the rewrite.
"""
from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Folders that move whole: every tracked file under them, whatever main holds on the day.
FOLDER_MOVES: dict[str, str] = {
    "agents/scheduler": "orchestration/scheduler",
    "agents/backtest": "orchestration/backtest",
    "agents/cli": "orchestration/cli",
    "agents/enrichment_sources": "agents/enrichment/sources",
}

# Single files. An agent module becomes its package's __init__.py: `agents.meeting` keeps its
# name (registry, context builders, evals and tests import it unchanged) and its helpers move in.
FILE_MOVES: dict[str, str] = {
    # orchestration: the machinery that runs agents against the store
    "agents/__main__.py": "orchestration/__main__.py",
    "agents/runner.py": "orchestration/runner.py",
    # each agent a package holding its own helpers
    "agents/lead_scoring.py": "agents/lead_scoring/__init__.py",
    "agents/follow_up.py": "agents/follow_up/__init__.py",
    "agents/follow_up_drafts.py": "agents/follow_up/drafts.py",
    "agents/response_playbook.py": "agents/follow_up/response_playbook.py",
    "agents/web_activity.py": "agents/follow_up/web_activity.py",
    "agents/enrichment.py": "agents/enrichment/__init__.py",
    "agents/pipeline.py": "agents/pipeline/__init__.py",
    "agents/pipeline_signals.py": "agents/pipeline/signals.py",
    "agents/pipeline_routing.py": "agents/pipeline/routing.py",
    "agents/meeting.py": "agents/meeting/__init__.py",
    "agents/commitments.py": "agents/meeting/commitments.py",
    "agents/transcripts.py": "agents/meeting/transcripts.py",
    "agents/due_dates.py": "agents/meeting/due_dates.py",
    # helpers two or more agents read: one place
    "agents/context_records.py": "agents/common/context_records.py",
    "agents/email_topics.py": "agents/common/email_topics.py",
    "agents/phrasing.py": "agents/common/phrasing.py",
    "agents/text_reading.py": "agents/common/text_reading.py",
    "agents/working_hours.py": "agents/common/working_hours.py",
}

# What stays where it is in agents/ (the reasoning wing): anything else found there is new.
STAYS_IN_AGENTS = {"agents/__init__.py", "agents/base.py", "agents/registry.py", "agents/evals.py",
                   "agents/llm", "agents/learning"}

NEW_FILES: dict[str, str] = {
    "orchestration/__init__.py": (
        '"""Orchestration: runs the reasoning wing (agents/) against the store (crm_core/).\n\n'
        "The runner, the scheduler sidecar, the back-tests and the `python -m orchestration` CLI live\n"
        "here. Nothing in agents/ or crm_core/ imports this package: it sits on top of both.\n"
        '"""\n'
    ),
    "agents/common/__init__.py": (
        '"""Helpers more than one agent reads: record shapes, text reading, phrasing, working hours."""\n'
    ),
}

# Files that hold the old names on purpose (the table itself, the measure, the guard).
NOT_REWRITTEN = {"docs/HOUSE-PLAN.md", "scripts/house_plan_moves.py", "scripts/import_graph.py",
                 "tests/test_house_plan.py"}
# Data, not code: golden cases and fixtures must stay byte-identical.
DATA_FOLDERS = ("tests/evals/", "tests/fixtures/", "data/", "mappings/")
TEXT_SUFFIXES = {".py", ".md", ".sh", ".txt", ".ini", ".toml", ".cfg", ".yml", ".yaml", ".mako", ".js", ""}


def module_of(path: str) -> str:
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_renames() -> dict[str, str]:
    """Old dotted name -> new one, for every name the table changes (folders by prefix)."""
    out = {module_of(old + "/__init__.py"): module_of(new + "/__init__.py") for old, new in FOLDER_MOVES.items()}
    for old, new in FILE_MOVES.items():
        if module_of(old) != module_of(new):
            out[module_of(old)] = module_of(new)
    return out


def path_renames() -> dict[str, str]:
    return {**FOLDER_MOVES, **FILE_MOVES}


def _boundary_sub(old: str, new: str, text: str, left: str) -> str:
    return re.sub(rf"(?<!{left}){re.escape(old)}(?!\w)", new, text)


def rename_module(name: str, renames: dict[str, str]) -> str:
    """`name` under its new name: the longest old prefix that matches wins."""
    for old in sorted(renames, key=len, reverse=True):
        if name == old or name.startswith(old + "."):
            return renames[old] + name[len(old):]
    return name


def rebuild_from_imports(source: str, renames: dict[str, str]) -> str:
    """`from P import m` where P.m moved under another parent than P's new name: rebuilt.

    The plain dotted rewrite turns `from agents.scheduler import worker` right by itself; it cannot
    turn `from agents import runner` into `from orchestration import runner`. Only those
    statements are rebuilt, so formatting and comments elsewhere stay as they are.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        parent = rename_module(node.module, renames)
        groups: dict[str, list[str]] = {}
        moved_elsewhere = False
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            new_full = rename_module(full, renames)
            new_parent, _, new_name = new_full.rpartition(".")
            if new_full != full and new_parent != parent:
                moved_elsewhere = True
                local = alias.asname or alias.name
                groups.setdefault(new_parent, []).append(new_name if local == new_name else f"{new_name} as {local}")
            else:
                groups.setdefault(parent, []).append(alias.name + (f" as {alias.asname}" if alias.asname else ""))
        if not moved_elsewhere:
            continue
        indent = re.match(r"\s*", lines[node.lineno - 1]).group(0)
        text = "".join(f"{indent}from {p} import {', '.join(names)}\n" for p, names in groups.items())
        edits.append((node.lineno - 1, node.end_lineno, text))
    for start, end, text in sorted(edits, reverse=True):
        lines[start:end] = [text]
    return "".join(lines)


FIRST_PARTY = {"agents", "crm_core", "orchestration", "api", "ui", "pages", "bench", "tests"}


def _top(node: ast.stmt) -> str | None:
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return node.module
    if isinstance(node, ast.Import) and len(node.names) == 1:
        return node.names[0].name
    return None


def sort_first_party_blocks(source: str) -> str:
    """Re-sort each run of adjacent module-level first-party imports the rename put out of order.

    Only runs where every statement is a first-party import are touched (the layout isort
    leaves: plain `import x` first, then `from x import`, each by module name), so a block
    with a comment or a third-party import in it keeps its hand-made order.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    runs: list[list[ast.stmt]] = []
    for node in tree.body:
        name = _top(node)
        if name is None or name.split(".")[0] not in FIRST_PARTY:
            runs.append([])
            continue
        if runs and runs[-1] and runs[-1][-1].end_lineno == node.lineno - 1:
            runs[-1].append(node)
        else:
            runs.append([node])
    for run in reversed([r for r in runs if len(r) > 1]):
        chunks = ["".join(lines[n.lineno - 1:n.end_lineno]) for n in run]
        order = sorted(range(len(run)), key=lambda i: (isinstance(run[i], ast.ImportFrom), _top(run[i]), i))
        lines[run[0].lineno - 1:run[-1].end_lineno] = [chunks[i] for i in order]
    return "".join(lines)


def rewrite_text(text: str, *, python: bool, modules: dict[str, str], paths: dict[str, str]) -> str:
    original = text
    if python:
        text = rebuild_from_imports(text, modules)
    for old in sorted(modules, key=len, reverse=True):
        text = _boundary_sub(old, modules[old], text, r"[\w.]")
    # The CLI: `python -m agents run ...` and subprocess lists ["-m", "agents", "run", ...].
    text = re.sub(r"(?<![\w.])-m agents(?![\w.])", "-m orchestration", text)
    text = re.sub(r"""(["']-m["']\s*,\s*["'])agents(["'])""", r"\1orchestration\2", text)
    for old in sorted(paths, key=len, reverse=True):
        text = _boundary_sub(old, paths[old], text, r"[\w./-]")
    if python and text != original:
        text = sort_first_party_blocks(text)
    return text


@dataclass
class Report:
    moved: list[tuple[str, str]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def tracked(root: Path, under: str | None = None) -> list[str]:
    args = ["ls-files", "-z"] + ([under] if under else [])
    return [p for p in git(root, *args).split("\0") if p]


def planned_moves(root: Path, report: Report) -> list[tuple[str, str]]:
    moves: list[tuple[str, str]] = []
    for old_dir, new_dir in FOLDER_MOVES.items():
        files = [p for p in tracked(root, old_dir) if (root / p).exists()]
        if not files and not (root / new_dir).exists():
            report.missing.append(old_dir)
        moves += [(p, new_dir + p[len(old_dir):]) for p in files]
    for old, new in FILE_MOVES.items():
        if (root / old).exists():
            moves.append((old, new))
        elif not (root / new).exists():
            report.missing.append(old)
    return moves


def do_moves(root: Path, moves: list[tuple[str, str]], report: Report, dry_run: bool) -> None:
    for old, new in moves:
        if (root / new).exists():
            report.conflicts.append(f"{old} -> {new}: both exist; merge by hand")
            continue
        report.moved.append((old, new))
        if not dry_run:
            (root / new).parent.mkdir(parents=True, exist_ok=True)
            git(root, "mv", old, new)


def create_files(root: Path, report: Report, dry_run: bool) -> None:
    for rel, text in NEW_FILES.items():
        if (root / rel).exists():
            continue
        report.created.append(rel)
        if not dry_run:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
            git(root, "add", rel)


def rewrite_all(root: Path, report: Report, dry_run: bool, moved: dict[str, str]) -> None:
    modules, paths = module_renames(), path_renames()
    for rel in tracked(root):
        # In a dry run the files are still at their old place: read them there.
        on_disk = root / rel if (root / rel).exists() else None
        shown = moved.get(rel, rel)
        if on_disk is None or shown in NOT_REWRITTEN or shown.startswith(DATA_FOLDERS):
            continue
        if Path(rel).suffix not in TEXT_SUFFIXES and Path(rel).name != "Makefile":
            continue
        try:
            text = on_disk.read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        new = rewrite_text(text, python=rel.endswith(".py"), modules=modules, paths=paths)
        if new != text:
            report.rewritten.append(shown)
            if not dry_run:
                on_disk.write_text(new, encoding="utf-8")


def remove_emptied(root: Path, report: Report, dry_run: bool) -> None:
    candidates = {str(Path(old).parent) for old in FILE_MOVES} | set(FOLDER_MOVES)
    for rel in sorted(candidates, key=len, reverse=True):
        folder = root / rel
        if not folder.is_dir() or rel == "agents":
            continue
        leftovers = [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        if leftovers:
            continue
        report.removed_dirs.append(rel)
        if not dry_run:
            shutil.rmtree(folder)
    # A moved module's stale bytecode next to its new package would shadow nothing, but it
    # confuses a reader of `ls`: clear the __pycache__ of agents/ itself.
    if not dry_run and (root / "agents" / "__pycache__").is_dir():
        shutil.rmtree(root / "agents" / "__pycache__")


def unplaced(root: Path) -> list[str]:
    """Top-level entries of agents/ that neither stay by the table nor are a planned destination."""
    destinations = {"/".join(Path(n).parts[:2]) for n in [*FILE_MOVES.values(), *FOLDER_MOVES.values(), *NEW_FILES]
                    if n.startswith("agents/")}
    out = []
    for entry in sorted((root / "agents").iterdir()):
        rel = f"agents/{entry.name}"
        if entry.name == "__pycache__" or rel in STAYS_IN_AGENTS or rel in destinations:
            continue
        if rel in FILE_MOVES or rel in FOLDER_MOVES:
            continue
        if entry.suffix == ".py" or (entry.is_dir() and (entry / "__init__.py").exists()):
            out.append(rel)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    report = Report()
    moves = planned_moves(root, report)
    do_moves(root, moves, report, args.dry_run)
    create_files(root, report, args.dry_run)
    rewrite_all(root, report, args.dry_run, {old: new for old, new in report.moved} if args.dry_run else {})
    remove_emptied(root, report, args.dry_run)
    report.unplaced = unplaced(root)

    verb = "would " if args.dry_run else ""
    print(f"{verb}move {len(report.moved)} file(s), {verb}create {len(report.created)}, "
          f"{verb}rewrite {len(report.rewritten)}, {verb}remove {len(report.removed_dirs)} emptied folder(s)")
    for old, new in report.moved:
        print(f"  mv {old} -> {new}")
    for template, items in (
        ("  new {}", report.created),
        ("  rewrite {}", report.rewritten),
        ("  rmdir {}", report.removed_dirs),
        ("  note: {} is not in this checkout (gone or renamed on main?): check the table", report.missing),
        ("  UNPLACED: {} is in agents/ but not in the table: give it a home (reasoning or orchestration)",
         report.unplaced),
        ("  CONFLICT: {}", report.conflicts),
    ):
        for item in items:
            print(template.format(item))
    return 1 if report.conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
