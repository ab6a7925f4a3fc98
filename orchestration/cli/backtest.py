"""`python -m orchestration backtest {lead_scoring,pipeline} [--as-of DATE] [--json] ...`.

Both replay the book in the store as it stood at `--as-of` (default: now) and print how good the
agent's decisions would have been. Each back-test module adds its own options
(`add_arguments(parser)`), replays with `replay(args)` and words its figures with `format_text`;
printing them (as text, or as JSON with `--json`) is done here, the same for both.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Protocol

from pydantic import BaseModel

from orchestration.backtest import lead_scoring, pipeline
from orchestration.cli.run_eval import parse_as_of


class Backtest(Protocol):
    """What a back-test module offers the command line (a module satisfies it by its functions)."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def replay(self, args: argparse.Namespace) -> BaseModel: ...

    def format_text(self, result: Any) -> str: ...


BACKTESTS: dict[str, tuple[Backtest, str]] = {
    "lead_scoring": (lead_scoring, "score contacts with a known outcome as if open: AUC, conversion per tier, "
                                   "calibration, baselines"),
    "pipeline": (pipeline, "flag the deals open at past dates and compare with how they ended"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backtest", help="measure an agent's decisions on the store's own history")
    which = parser.add_subparsers(dest="backtest", required=True, metavar="AGENT")
    for name, (module, help_) in BACKTESTS.items():
        sub = which.add_parser(name, help=help_, description=help_)
        module.add_arguments(sub)
        # The common options, unless the back-test defines its own (a series of --as-of dates, say).
        if "--as-of" not in sub._option_string_actions:
            sub.add_argument("--as-of", type=parse_as_of, help="replay the book as it stood at this time (default: now)")
        if "--json" not in sub._option_string_actions:
            sub.add_argument("--json", action="store_true", help="print the figures as JSON")
        sub.set_defaults(func=_run, backtest_module=name)


def _run(args: argparse.Namespace) -> int:
    module, _help = BACKTESTS[args.backtest_module]
    result = module.replay(args)
    print(json.dumps(result.model_dump(mode="json"), indent=2) if args.json else module.format_text(result))
    return 0
