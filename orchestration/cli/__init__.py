"""`python -m orchestration`: every module in this package adds its sub-commands (`register(subparsers)`)."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from crm_core.cli.plugins import plugin_parser, run_command


def build_parser() -> argparse.ArgumentParser:
    return plugin_parser(__name__, prog="python -m orchestration",
                         description="Agentic CRM: run, evaluate and back-test agents.")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)
