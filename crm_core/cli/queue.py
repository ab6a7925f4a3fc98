"""queue and policy: the approval queue and its policies from the command line.

    python -m crm_core queue list [--agent A] [--stakes S] [--json]
    python -m crm_core queue approve ID [--as USER] [--reason TEXT] [--json]
    python -m crm_core queue reject ID [--as USER] [--reason TEXT] [--json]
    python -m crm_core queue revert ID [--as USER] [--reason TEXT] [--json]
    python -m crm_core queue expire [--json]
    python -m crm_core policy list [--json]
    python -m crm_core policy set TYPE [--threshold X] [--stakes S] [--always-ask | --no-always-ask] [--as USER]
    python -m crm_core policy supervise AGENT (--hours H | --until ISO | --decisions N | --off) [--as USER]
    python -m crm_core policy calibrate [--target 0.95] [--json]

The dashboard calls the same services (`crm_core.oversight`). Exit codes: 0 done, 1 the
decision failed (execution or revert), 2 a request that cannot be done (printed as one line).
`--as` (or CRM_USER, or the owner of the API token in CRM_TOKEN) must be an active user with the
right; otherwise the command is refused and the message names the missing right.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from crm_core import clock, oversight
from crm_core.auth.actor import Actor
from crm_core.auth.cli_identity import cli_actor
from crm_core.db import unit_of_work
from crm_core.errors import UserError
from crm_core.models import Decision


def _actor(session: Session, args: argparse.Namespace, doing: str) -> Actor:
    return cli_actor(session, args.as_user, doing=doing)


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, default=str))


def _decision_dict(d: Decision) -> dict:
    return {
        "id": d.id, "agent": d.agent, "status": d.status, "subject_type": d.subject_type, "subject_id": d.subject_id,
        "confidence": d.confidence, "stakes": d.stakes, "decided_by": d.decided_by, "decided_at": d.decided_at,
        "decision_note": d.decision_note, "executed_at": d.executed_at, "reverted_by": d.reverted_by,
        "reverted_at": d.reverted_at, "error": d.error,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    queue = subparsers.add_parser("queue", help="list, approve, reject or revert agent decisions")
    qsub = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")

    p = qsub.add_parser("list", help="decisions waiting for a human, soonest to expire first")
    p.add_argument("--agent")
    p.add_argument("--stakes", choices=["low", "medium", "high", "critical"])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)

    for name, func, help_text in (
        ("approve", _approve, "approve a queued decision: it executes at once"),
        ("reject", _reject, "reject a queued decision: nothing runs"),
        ("revert", _revert, "undo an executed decision's actions"),
    ):
        p = qsub.add_parser(name, help=help_text)
        p.add_argument("id", type=int)
        p.add_argument("--as", dest="as_user", metavar="USER", help="who decides: an active user's name (default: CRM_USER, or CRM_TOKEN's owner)")
        p.add_argument("--reason", help="the human's reason, kept in the audit log")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = qsub.add_parser("expire", help="expire queued decisions past their time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_expire)

    policy = subparsers.add_parser("policy", help="what each action type may do without a human; supervised mode")
    psub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    p = psub.add_parser("list", help="every action type's stakes, threshold and always-ask; supervised agents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_policy_list)

    p = psub.add_parser("set", help="change one action type's policy (audited)")
    p.add_argument("action_type")
    p.add_argument("--threshold", type=float)
    p.add_argument("--stakes", choices=["low", "medium", "high", "critical"])
    p.add_argument("--always-ask", dest="always_ask", action="store_true", default=None)
    p.add_argument("--no-always-ask", dest="always_ask", action="store_false")
    p.add_argument("--as", dest="as_user", metavar="USER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_policy_set)

    p = psub.add_parser("supervise", help="queue every decision of an agent for a while or a number of decisions")
    p.add_argument("agent")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--hours", type=float)
    group.add_argument("--until", help="ISO time, UTC")
    group.add_argument("--decisions", type=int)
    group.add_argument("--off", action="store_true")
    p.add_argument("--as", dest="as_user", metavar="USER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_supervise)

    p = psub.add_parser("calibrate", help="suggest thresholds from human verdicts on queued decisions")
    p.add_argument("--target", type=float, default=0.95)
    p.add_argument("--min-decisions", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_calibrate)


def _list(args: argparse.Namespace) -> int:
    with unit_of_work(readonly=True) as session:
        items = oversight.queue_items(session, agent=args.agent, stakes=args.stakes, limit=args.limit)
    if args.json:
        _print_json([i.model_dump(mode="json") for i in items])
        return 0
    if not items:
        print("the queue is empty")
    for item in items:
        subject = item.subject_label or f"{item.subject_type} {item.subject_id}"
        confidence = f"{item.confidence:.2f}" if item.confidence is not None else "-"
        expires = f"  expires {item.expires_at:%Y-%m-%d %H:%M}" if item.expires_at else ""
        print(f"#{item.id}  {item.agent}  {subject}  confidence {confidence}  {item.stakes} stakes{expires}")
        for action in item.actions:
            undo = "" if action.reversible else f"  [{action.undo_note}]"
            print(f"    - {action.summary}{undo}")
        if item.policy_reason:
            print(f"    why queued: {item.policy_reason.removeprefix('queued: ')}")
    return 0


def _report(decision: Decision, as_json: bool, verb: str) -> int:
    if as_json:
        _print_json(_decision_dict(decision))
    else:
        line = f"decision {decision.id} {verb}: now {decision.status}"
        print(line + (f" ({decision.error})" if decision.error else ""))
    return 1 if decision.status == "failed" or (verb == "reverted" and decision.status != "reverted") else 0


def _approve(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        decision = oversight.approve(session, args.id, actor=_actor(session, args, f"approve decision {args.id}"), note=args.reason)
    return _report(decision, args.json, "approved")


def _reject(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        decision = oversight.reject(session, args.id, actor=_actor(session, args, f"reject decision {args.id}"), note=args.reason)
    return _report(decision, args.json, "rejected")


def _revert(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        decision = oversight.revert(session, args.id, actor=_actor(session, args, f"revert decision {args.id}"), note=args.reason)
    return _report(decision, args.json, "reverted")


def _expire(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        count = oversight.expire_stale(session)
    _print_json({"expired": count}) if args.json else print(f"{count} decision{'s' if count != 1 else ''} expired")
    return 0


def _policy_list(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        policies = oversight.get_policies(session)
        supervised = [s for s in oversight.supervision(session) if s.supervised]
    if args.json:
        _print_json({"policies": [p.model_dump(mode="json") for p in policies],
                     "supervised": [s.model_dump(mode="json") for s in supervised]})
        return 0
    for p in policies:
        ask = "always asks" if p.always_ask else f"alone at >= {p.threshold:.2f}"
        print(f"{p.action_type:<22} {p.stakes:<9} {ask}")
    for s in supervised:
        print(f"supervised: {s.agent}: {s.reason}")
    return 0


def _policy_set(args: argparse.Namespace) -> int:
    if args.threshold is None and args.stakes is None and args.always_ask is None:
        raise UserError(f"policy set {args.action_type}: give --threshold, --stakes or --always-ask/--no-always-ask")
    with unit_of_work() as session:
        actor = _actor(session, args, f"change the policy of {args.action_type}")
        view = oversight.update_policy(session, args.action_type, actor=actor, threshold=args.threshold,
                                       stakes=args.stakes, always_ask=args.always_ask)
    if args.json:
        _print_json(view.model_dump(mode="json"))
    else:
        print(f"{view.action_type}: {view.stakes} stakes, threshold {view.threshold:.2f}, always ask: {view.always_ask}")
    return 0


def _supervise(args: argparse.Namespace) -> int:
    until = None
    if args.hours is not None:
        until = clock.now() + timedelta(hours=args.hours)
    elif args.until:
        try:
            until = clock.to_naive_utc(datetime.fromisoformat(args.until))
        except ValueError:
            raise UserError(f"policy supervise {args.agent}: --until {args.until!r} is not an ISO time like 2026-12-01T09:00") from None
    with unit_of_work() as session:
        actor = _actor(session, args, f"supervise {args.agent}")
        view = oversight.set_supervised(session, args.agent, actor=actor, until=until, decisions=args.decisions, off=args.off)
    if args.json:
        _print_json(view.model_dump(mode="json"))
    else:
        print(f"{view.agent}: {view.reason or 'not supervised'}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        rows = oversight.calibration_report(session, target=args.target, min_decisions=args.min_decisions)
    if args.json:
        _print_json([r.model_dump(mode="json") for r in rows])
        return 0
    for r in rows:
        suggested = f"{r.suggested_threshold:.2f}" if r.suggested_threshold is not None else "-"
        print(f"{r.action_type:<22} now {r.current_threshold}  suggested {suggested}  ({r.note})")
    return 0
