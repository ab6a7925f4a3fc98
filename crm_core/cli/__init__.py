"""`python -m crm_core`: every module in this package adds its sub-commands.

A module here defines `register(subparsers)`, adding parsers whose `func(args) -> int` runs the
command (`crm_core.cli.plugins` loads them). Errors a user can cause are `UserError`s: printed as
one clear line, exit code 2.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from crm_core.cli.plugins import plugin_parser, run_command


def build_parser() -> argparse.ArgumentParser:
    return plugin_parser(__name__, prog="python -m crm_core", description="Agentic CRM: data layer commands.")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)
