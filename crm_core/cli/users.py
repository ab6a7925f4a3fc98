"""users: the people who sign in, their roles, passwords and API tokens.

    python -m crm_core users list [--json]
    python -m crm_core users add NAME --role rep|manager|admin [--email E] [--team T] [--password-stdin | --no-password] --as ADMIN
    python -m crm_core users set-password NAME [--password-stdin] --as ADMIN
    python -m crm_core users set-role NAME ROLE --as ADMIN
    python -m crm_core users deactivate NAME --as ADMIN      (reactivate NAME likewise)
    python -m crm_core users ensure-admin                    (first start: `make run` calls it)
    python -m crm_core users token issue --name WHAT [--for NAME] --as USER
    python -m crm_core users token list [--for NAME] [--json]
    python -m crm_core users token revoke ID --as USER

Passwords are read from standard input, never from the command line (where `ps` shows them).
Without one, a one-time password is printed once; the user must change it at first sign-in.
"""
from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy.orm import Session

from crm_core.auth.accounts import find_user
from crm_core.auth.cli_identity import cli_actor
from crm_core.auth.tokens import issue_token, list_tokens, revoke_token
from crm_core.db import unit_of_work
from crm_core.errors import NotFound, UserError
from crm_core.services import users


def register(subparsers: argparse._SubParsersAction) -> None:
    cmd = subparsers.add_parser("users", help="who signs in: users, roles, passwords, API tokens")
    sub = cmd.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    p = sub.add_parser("list", help="every user with role, status and last sign-in")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)

    p = sub.add_parser("add", help="add a user (admin)")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["rep", "manager", "admin"])
    p.add_argument("--email", help="the email their single sign-on provider vouches for")
    p.add_argument("--team")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    group.add_argument("--no-password", action="store_true", help="no password: signs in through single sign-on only")
    _as(p)
    p.set_defaults(func=_add)

    p = sub.add_parser("set-password", help="set a password (admin); without --password-stdin, a one-time password")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")
    _as(p)
    p.set_defaults(func=_set_password)

    p = sub.add_parser("set-role", help="change a user's role (admin)")
    p.add_argument("name")
    p.add_argument("role", choices=["rep", "manager", "admin"])
    _as(p)
    p.set_defaults(func=_set_role)

    for name, active in (("deactivate", False), ("reactivate", True)):
        p = sub.add_parser(name, help=f"{name} a user (admin); a deactivated user's sessions and tokens stop at once")
        p.add_argument("name")
        _as(p)
        p.set_defaults(func=_set_active, active=active)

    p = sub.add_parser("ensure-admin", help="create the first admin if there is none (CRM_ADMIN_PASSWORD or a printed one-time password)")
    p.set_defaults(func=_ensure_admin)

    token = sub.add_parser("token", help="API tokens for scripts and the HTTP API")
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = tsub.add_parser("issue", help="a new token, printed once")
    p.add_argument("--name", required=True, help="what uses it, e.g. \"nightly export\"")
    p.add_argument("--for", dest="for_user", help="whose token (default: yourself; another user needs admin)")
    _as(p)
    p.set_defaults(func=_token_issue)
    p = tsub.add_parser("list", help="tokens, newest first (never the secret)")
    p.add_argument("--for", dest="for_user")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_token_list)
    p = tsub.add_parser("revoke", help="revoke a token: it stops working at once")
    p.add_argument("id", type=int)
    _as(p)
    p.set_defaults(func=_token_revoke)


def _as(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as", dest="as_user", metavar="USER", help="who does this: an active user (default: CRM_USER or CRM_TOKEN's owner)")


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UserError("no password on standard input (e.g. `read -rs PW; printf '%s\\n' \"$PW\" | python -m crm_core users ...`)")
    return password


def _list(args: argparse.Namespace) -> int:
    with unit_of_work(readonly=True) as session:
        rows = users.list_users(session)
    if args.json:
        print(json.dumps([u.model_dump(mode="json") for u in rows], indent=2))
        return 0
    for u in rows:
        status = "active" if u.active else "deactivated"
        if u.locked_until:
            status += f", locked until {u.locked_until:%Y-%m-%d %H:%M} UTC"
        login = "password" if u.has_password else "no password"
        seen = f", last sign-in {u.last_sign_in_at:%Y-%m-%d %H:%M}" if u.last_sign_in_at else ""
        print(f"{u.name:<28} {u.role:<8} {status}; {login}{seen}{'  ' + u.email if u.email else ''}")
    return 0


def _add(args: argparse.Namespace) -> int:
    password = _read_password() if args.password_stdin else None
    with unit_of_work() as session:
        actor = cli_actor(session, args.as_user, doing=f"add the user {args.name!r}")
        view = users.add_user(session, name=args.name, role=args.role, email=args.email, team=args.team, actor=actor)
        one_time = None if args.no_password else users.set_password(session, view.name, actor=actor, password=password)
    print(f"added {view.name} ({view.role})")
    if one_time:
        print(f"one-time password for {view.name}: {one_time}  (shown once; they choose their own at first sign-in)")
    return 0


def _set_password(args: argparse.Namespace) -> int:
    password = _read_password() if args.password_stdin else None
    with unit_of_work() as session:
        actor = cli_actor(session, args.as_user, doing=f"set {args.name}'s password")
        one_time = users.set_password(session, args.name, actor=actor, password=password)
    print(f"password set for {args.name}; their other sessions are signed out")
    if one_time:
        print(f"one-time password: {one_time}  (shown once; they choose their own at first sign-in)")
    return 0


def _set_role(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        actor = cli_actor(session, args.as_user, doing=f"change {args.name}'s role")
        view = users.set_role(session, args.name, args.role, actor=actor)
    print(f"{view.name} is now {view.role}")
    return 0


def _set_active(args: argparse.Namespace) -> int:
    verb = "reactivate" if args.active else "deactivate"
    with unit_of_work() as session:
        actor = cli_actor(session, args.as_user, doing=f"{verb} {args.name}")
        view = users.set_active(session, args.name, active=args.active, actor=actor)
    print(f"{view.name} is {'active' if view.active else 'deactivated: sign-in, sessions and tokens stopped'}")
    return 0


def _ensure_admin(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        created = users.ensure_first_admin(session)
    if created is None:
        return 0
    name, one_time = created
    if one_time:
        print(f"First start: created the admin user {name!r} with the one-time password {one_time}\n"
              "Sign in with it and choose your own password; it is not shown again "
              "(set CRM_ADMIN_PASSWORD to choose it up front).")
    else:
        print(f"First start: created the admin user {name!r} with the password in CRM_ADMIN_PASSWORD.")
    return 0


def _whose(session: Session, name: str | None) -> int | None:
    if name is None:
        return None
    user = find_user(session, name)
    if user is None:
        raise NotFound(f"user {name!r} not found; `python -m crm_core users list` shows everyone")
    return user.id


def _token_issue(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        actor = cli_actor(session, args.as_user, doing="issue an API token")
        user_id = _whose(session, args.for_user) or actor.user_id
        if user_id is None:
            raise UserError("token issue: say whose token with --for NAME")
        token_id, raw = issue_token(session, user_id=user_id, name=args.name, actor=actor)
    print(f"token {token_id} ({args.name}): {raw}\nShown once: store it in your script's secrets (CRM_TOKEN=...). "
          f"Revoke with `python -m crm_core users token revoke {token_id}`.")
    return 0


def _token_list(args: argparse.Namespace) -> int:
    with unit_of_work(readonly=True) as session:
        rows = list_tokens(session, user_id=_whose(session, args.for_user))
    if args.json:
        print(json.dumps([t.model_dump(mode="json") | {"active": t.active} for t in rows], indent=2))
        return 0
    if not rows:
        print("no API tokens")
    for t in rows:
        state = "active" if t.active else f"revoked {t.revoked_at:%Y-%m-%d %H:%M} by {t.revoked_by}"
        used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
        print(f"#{t.id}  {t.user_name}  {t.name!r}  {t.prefix}…  {state}; {used}")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    with unit_of_work() as session:
        actor = cli_actor(session, args.as_user, doing=f"revoke token {args.id}")
        view = revoke_token(session, args.id, actor=actor)
    print(f"token {view.id} ({view.name}) of {view.user_name} is revoked")
    return 0
