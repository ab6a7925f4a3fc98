"""webhooks: inbound sources that post events, outbound subscriptions that hear decisions.

    python -m crm_core webhooks source add NAME [--browser] --as ADMIN     prints the secret (or site key) once
    python -m crm_core webhooks source list [--json]
    python -m crm_core webhooks source off NAME --as ADMIN
    python -m crm_core webhooks subscribe URL --events decision.queued,deal.risk_changed [--description TEXT] --as ADMIN
    python -m crm_core webhooks subscriptions [--json]
    python -m crm_core webhooks unsubscribe ID --as ADMIN
    python -m crm_core webhooks deliveries [--status pending|delivered|failed] [--limit N] [--json]
    python -m crm_core webhooks deliver                                     post what is due now (the scheduler does this)
"""
from __future__ import annotations

import argparse
import json

from crm_core.auth.cli_identity import cli_actor
from crm_core.db import unit_of_work
from crm_core.webhooks import outbound, sources


def _print_json(rows) -> None:
    print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))


def register(subparsers: argparse._SubParsersAction) -> None:
    cmd = subparsers.add_parser("webhooks", help="signed webhooks: inbound sources, outbound subscriptions, deliveries")
    sub = cmd.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")

    source = sub.add_parser("source", help="inbound sources posting events to /v1/webhooks/NAME or /v1/collect/NAME")
    ssub = source.add_subparsers(dest="source_command", required=True, metavar="ACTION")
    p = ssub.add_parser("add", help="a new source; its secret is printed once")
    p.add_argument("name")
    p.add_argument("--browser", action="store_true", help="the website snippet: a public site key, page views and forms only")
    p.add_argument("--as", dest="as_user")
    p.set_defaults(func=_source_add)
    p = ssub.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_source_list)
    p = ssub.add_parser("off", help="refuse the source's requests from now on")
    p.add_argument("name")
    p.add_argument("--as", dest="as_user")
    p.set_defaults(func=_source_off)

    p = sub.add_parser("subscribe", help="post these events to URL, signed with a new secret (printed once)")
    p.add_argument("url")
    p.add_argument("--events", required=True, help=", ".join(outbound.EVENT_TYPES))
    p.add_argument("--description")
    p.add_argument("--as", dest="as_user")
    p.set_defaults(func=_subscribe)
    p = sub.add_parser("subscriptions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_subscriptions)
    p = sub.add_parser("unsubscribe")
    p.add_argument("id", type=int)
    p.add_argument("--as", dest="as_user")
    p.set_defaults(func=_unsubscribe)
    p = sub.add_parser("deliveries", help="outbound deliveries, newest first")
    p.add_argument("--status", choices=["pending", "sending", "delivered", "failed"])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_deliveries)
    p = sub.add_parser("deliver", help="post the deliveries that are due now")
    p.set_defaults(func=_deliver)


def _source_add(args) -> int:
    with unit_of_work() as s:
        view, secret = sources.create_source(s, args.name, kind="browser" if args.browser else "signed",
                                             actor=cli_actor(s, args.as_user, doing="add a webhook source"))
    what = "site key (public, for the snippet's data-site-key)" if args.browser else "secret (sign requests with it)"
    print(f"source {view.name!r} added; its {what}, shown once:\n{secret}")
    return 0


def _source_list(args) -> int:
    with unit_of_work(readonly=True) as s:
        rows = sources.list_sources(s)
    if args.json:
        _print_json(rows)
    for r in [] if args.json else rows:
        print(f"{r.name:<24} {r.kind:<8} {'on' if r.active else 'off':<4} last used {r.last_used_at or 'never'}")
    return 0


def _source_off(args) -> int:
    with unit_of_work() as s:
        sources.deactivate_source(s, args.name, actor=cli_actor(s, args.as_user, doing="turn off a webhook source"))
    print(f"source {args.name!r} is off")
    return 0


def _subscribe(args) -> int:
    with unit_of_work() as s:
        view, secret = outbound.create_subscription(s, args.url, args.events.split(","), description=args.description,
                                                    actor=cli_actor(s, args.as_user, doing="add a webhook subscription"))
    print(f"subscription {view.id} to {view.url} for {', '.join(view.events)}; its signing secret, shown once:\n{secret}")
    return 0


def _subscriptions(args) -> int:
    with unit_of_work(readonly=True) as s:
        rows = outbound.list_subscriptions(s)
    if args.json:
        _print_json(rows)
    for r in [] if args.json else rows:
        print(f"{r.id:>4} {'on' if r.active else 'off':<4} {r.url}  {', '.join(r.events)}")
    return 0


def _unsubscribe(args) -> int:
    with unit_of_work() as s:
        outbound.deactivate_subscription(s, args.id, actor=cli_actor(s, args.as_user, doing="turn off a webhook subscription"))
    print(f"subscription {args.id} is off; nothing more is posted to it")
    return 0


def _deliveries(args) -> int:
    with unit_of_work(readonly=True) as s:
        rows = outbound.deliveries(s, status=args.status, limit=args.limit)
    if args.json:
        _print_json(rows)
    for r in [] if args.json else rows:
        print(f"{r.created_at:%Y-%m-%d %H:%M} {r.status:<9} x{r.attempts} {r.event_type:<18} {r.summary} -> {r.url}"
              + (f"  ({r.last_error})" if r.last_error and r.status != "delivered" else ""))
    return 0


def _deliver(_args) -> int:
    counts = outbound.deliver_due()
    print(", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0
