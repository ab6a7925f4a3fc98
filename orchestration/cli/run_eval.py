"""`python -m orchestration run AGENT ...` and `python -m orchestration eval ...`.

Exit codes say what happened: 0 every subject (case) went through, 1 some failed or the run was
stopped (the count is printed), 2 bad input (an unknown agent or option, an id that matches
nothing, no eval cases). SIGTERM and SIGINT stop a run cleanly: no new subject starts, a model
call in flight is abandoned, and the summary of what was done is printed before exiting.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from agents.base import AGENT_NAMES
from agents.evals import pass_rates, run_evals
from crm_core.db import migrate
from crm_core.errors import UserError
from crm_core.settings import get_settings
from orchestration.runner import RunControl, RunInterrupted, run_agent

PROVIDERS = ("offline", "anthropic", "ollama")


def parse_as_of(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--as-of {value!r} is not an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run one agent and hand its decisions to oversight")
    run.add_argument("agent", choices=AGENT_NAMES)
    which = run.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every subject due (the default)")
    which.add_argument("--id", type=int, action="append", dest="ids", help="a subject id (repeatable)")
    run.add_argument("--provider", choices=PROVIDERS, help="default: CRM_LLM_PROVIDER, else anthropic with a key, else offline")
    run.add_argument("--as-of", type=parse_as_of, help="reason as the store stood at this time (back-tests)")
    run.add_argument("--deadline", type=float, metavar="SECONDS",
                     help="after this long no model is called; the rest is decided offline (default: CRM_LLM_RUN_DEADLINE_S)")
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=_run)

    ev = subparsers.add_parser("eval", help="run the golden scenarios in tests/evals/ and print the pass rate per agent")
    ev.add_argument("agents", nargs="*", choices=[*AGENT_NAMES, []], help="default: all agents")
    ev.add_argument("--provider", choices=PROVIDERS, default="offline")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_eval)


@contextmanager
def stop_on_signals(control) -> Iterator[None]:
    """SIGTERM/SIGINT ask the run to stop (see RunControl); the previous handlers come back after."""
    names = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}

    def handler(signum, _frame):
        control.request_stop(f"{names.get(signum, signum)} received")

    previous = {sig: signal.signal(sig, handler) for sig in names}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run(args: argparse.Namespace) -> int:
    if args.deadline is not None and args.deadline <= 0:
        raise UserError(f"--deadline {args.deadline:g} must be a positive number of seconds")
    migrate()
    control = RunControl(deadline_s=args.deadline if args.deadline is not None else (get_settings().llm_run_deadline_s or None))
    try:
        with stop_on_signals(control):
            result = run_agent(args.agent, subject_ids=args.ids, provider=args.provider, as_of=args.as_of,
                               control=control)
    except RunInterrupted as exc:
        # A second signal before the run reached its subjects' loop (or between them).
        print(f"{args.agent}: stopped ({exc}) before the run finished; decisions already stored are kept")
        return 1
    if args.ids and not result.outcomes:
        raise UserError(f"no {args.agent} subject matches --id {', '.join(str(i) for i in args.ids)}")
    if args.json:
        print(json.dumps({**result.model_dump(mode="json"), "failed": result.failed, "not_reached": result.not_reached,
                          "summary": result.summary()}, indent=2))
    else:
        for o in result.outcomes:
            if o.failed:
                print(f"  failed {o.subject_key}: {o.error}")
        print(result.summary())
    sys.stdout.flush()
    return 1 if (result.failed or result.not_reached or result.stopped) else 0


def _eval(args: argparse.Namespace) -> int:
    names = list(args.agents) or list(AGENT_NAMES)
    results = run_evals(names, provider=args.provider, settings=get_settings().llm())
    if not results:
        raise UserError(f"no eval cases found for {', '.join(names)} under tests/evals/")
    rates = pass_rates(results)
    if args.json:
        print(json.dumps({"pass_rates": rates, "cases": [r.model_dump() for r in results]}, indent=2))
    else:
        for r in results:
            if not r.passed:
                print(f"FAIL {r.agent}/{r.name}: {'; '.join(r.failures)}")
        for agent, (passed, total) in rates.items():
            print(f"{agent:13s} {passed}/{total} passed ({passed / total:.0%}) with provider {args.provider}")
    failed = sum(1 for r in results if not r.passed)
    if failed:
        print(f"{failed} of {len(results)} case(s) failed", file=sys.stderr)
    return 1 if failed else 0
