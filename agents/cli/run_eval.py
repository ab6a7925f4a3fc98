"""`python -m agents run AGENT ...` and `python -m agents eval ...`."""
from __future__ import annotations

import argparse
import json
from datetime import datetime

from agents.base import AGENT_NAMES
from crm_core.errors import UserError

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
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=_run)

    ev = subparsers.add_parser("eval", help="run the golden scenarios in tests/evals/ and print the pass rate per agent")
    ev.add_argument("agents", nargs="*", choices=[*AGENT_NAMES, []], help="default: all agents")
    ev.add_argument("--provider", choices=PROVIDERS, default="offline")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_eval)


def _run(args: argparse.Namespace) -> int:
    from agents.runner import run_agent
    from crm_core.db import migrate

    migrate()
    result = run_agent(args.agent, subject_ids=args.ids, provider=args.provider, as_of=args.as_of)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        done = sum(1 for o in result.outcomes if not o.skipped)
        print(f"{args.agent}: {done} context(s) reasoned, {len(result.decision_ids)} decision(s) stored, {result.failed} failed")
        for o in result.outcomes:
            if o.failed:
                print(f"  failed {o.subject_key}: {o.error}")
    return 1 if result.outcomes and result.failed == len(result.outcomes) else 0


def _eval(args: argparse.Namespace) -> int:
    from agents.evals import pass_rates, run_evals

    names = list(args.agents) or list(AGENT_NAMES)
    results = run_evals(names, provider=args.provider)
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
    return 0 if all(r.passed for r in results) else 1
