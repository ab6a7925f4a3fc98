"""`python -m orchestration backtest {lead_scoring,pipeline} [--as-of DATE] [--json] ...`.

Both replay the book in the store as it stood at `--as-of` (default: now) and print how good the
agent's decisions would have been. Each back-test module adds its own options
(`add_arguments(parser)`) and runs with `main(args)`.
"""
from __future__ import annotations

import argparse
import importlib

from orchestration.cli.run_eval import parse_as_of

BACKTESTS = {
    "lead_scoring": "score contacts with a known outcome as if open: AUC, conversion per tier, calibration, baselines",
    "pipeline": "flag the deals open at past dates and compare with how they ended",
}


def _module(name: str):
    try:
        return importlib.import_module(f"orchestration.backtest.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"orchestration.backtest.{name}":
            raise
        return None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backtest", help="measure an agent's decisions on the store's own history")
    which = parser.add_subparsers(dest="backtest", required=True, metavar="AGENT")
    for name, help_ in BACKTESTS.items():
        sub = which.add_parser(name, help=help_, description=help_)
        module = _module(name)
        if module is not None and hasattr(module, "add_arguments"):
            module.add_arguments(sub)
        # The common options, unless the back-test defines its own (a series of --as-of dates, say).
        if "--as-of" not in sub._option_string_actions:
            sub.add_argument("--as-of", type=parse_as_of, help="replay the book as it stood at this time (default: now)")
        if "--json" not in sub._option_string_actions:
            sub.add_argument("--json", action="store_true", help="print the figures as JSON")
        sub.set_defaults(func=_run, backtest_module=name)


def _run(args: argparse.Namespace) -> int:
    from crm_core.errors import UserError

    module = _module(args.backtest_module)
    if module is None or not hasattr(module, "main"):
        raise UserError(f"the {args.backtest_module} back-test is not installed (orchestration/backtest/{args.backtest_module}.py)")
    return int(module.main(args) or 0)
