"""One command line made of plugin modules: each module of a package that defines
`register(subparsers)` adds its sub-commands, whose parsers set `func(args) -> int`.

`python -m crm_core` (the store's commands) and `python -m orchestration` (run, eval, back-test)
are both built this way; a new command is a new module in the package, nothing else to edit.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from crm_core.errors import UserError


def plugin_parser(package: str, prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with one sub-command group, filled by every module of `package` with `register`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Sorted by module name, so the help lists the commands in the same order on every machine.
    for info in sorted(pkgutil.iter_modules(importlib.import_module(package).__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the chosen command. A mistake the user can make (`UserError`) is one
    clear line on stderr and exit code 2, not a traceback."""
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
