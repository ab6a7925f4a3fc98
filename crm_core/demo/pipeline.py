"""Deals, their stage paths, and the lifecycle stage each contact ended up in.

Which closed deals are won is decided by a latent deal quality (account fit, the champion's
intent, whether a decision maker is in the buying committee, plus noise), so outcomes follow
causes an agent can see. Lost deals and some open ones "go quiet": `quiet_from` marks the moment
the buyer stopped answering, which the engagement stage honours.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from crm_core.demo import vocab
from crm_core.demo.people import promote_to_decision_maker
from crm_core.demo.records import AccountRec, ContactRec, DealRec, StageRec, UserRec
from crm_core.demo.timeline import days, whole_seconds

WINDOW_DAYS = 120
OPEN_STAGE_WEIGHTS = (22, 24, 20, 19, 15)
LOST_AT_WEIGHTS = (10, 30, 25, 25, 10)


def _amount(rng: random.Random, employees: int, expansion: bool) -> Decimal:
    if employees < 200:
        value = rng.uniform(8_000, 24_000)
    elif employees <= 2000:
        value = rng.uniform(24_000, 90_000)
    else:
        value = rng.uniform(80_000, 260_000)
    if expansion:
        value *= 0.35
    step = 500 if value < 20_000 else 1000
    return Decimal(int(round(value / step) * step))


def _durations(rng: random.Random, stages: tuple[str, ...], employees: int) -> list[float]:
    pace = 0.75 if employees < 200 else (1.35 if employees > 2000 else 1.0)
    return [rng.uniform(*vocab.STAGE_DAYS[s]) * pace for s in stages]


def _fit_in_window(lengths: list[float], limit: float) -> list[float]:
    total = sum(lengths)
    return lengths if total <= limit else [x * limit / total for x in lengths]


def _path(start: datetime, stages: tuple[str, ...], lengths: list[float]) -> list[tuple[str, datetime]]:
    path, at = [], start
    for stage, length in zip(stages, lengths, strict=True):
        path.append((stage, whole_seconds(at)))
        at += days(length)
    return path


def _in_office_hours(path: list[tuple[str, datetime]], owner: UserRec, as_of: datetime) -> list[tuple[str, datetime]]:
    """Move each stage change into the owner's working day, keeping order: reps update deals at work."""
    out: list[tuple[str, datetime]] = []
    offset = timedelta(hours=owner.utc_offset)
    for stage, at in path:
        local = at + offset
        midnight = local.replace(hour=0, minute=0, second=0)
        share_of_day = (local - midnight).total_seconds() / 86400
        hour = owner.work_start_hour + share_of_day * (owner.work_end_hour - owner.work_start_hour)
        moved = whole_seconds(midnight + timedelta(hours=hour) - offset)
        if moved > as_of - timedelta(minutes=10):
            moved = at
        if out and moved <= out[-1][1]:
            moved = out[-1][1] + timedelta(minutes=1)
        out.append((stage, moved))
    return out


def make_deals(rng: random.Random, n: int, accounts: list[AccountRec], contacts: list[ContactRec],
               users: list[UserRec], as_of: datetime) -> list[DealRec]:
    by_account: dict[int, list[int]] = {}
    for c_idx, contact in enumerate(contacts):
        if contact.account is not None:
            by_account.setdefault(contact.account, []).append(c_idx)
    candidates = sorted(by_account)
    weights = [2.7 ** accounts[a].fit for a in candidates]
    per_account: dict[int, int] = {}
    chosen: list[int] = []
    while len(chosen) < n:
        a_idx = rng.choices(candidates, weights=weights, k=1)[0]
        if per_account.get(a_idx, 0) >= 3 or per_account.get(a_idx, 0) >= len(by_account[a_idx]):
            if all(per_account.get(a, 0) >= min(3, len(by_account[a])) for a in candidates):
                break  # a tiny book cannot hold more deals
            continue
        per_account[a_idx] = per_account.get(a_idx, 0) + 1
        chosen.append(a_idx)

    n_closed = round(len(chosen) * 0.46)
    closed = set(rng.sample(range(len(chosen)), n_closed))
    drafts = []
    used_primary: set[int] = set()
    for d_idx, a_idx in enumerate(chosen):
        people = by_account[a_idx]
        free = [c for c in people if c not in used_primary] or people
        primary = rng.choices(free, weights=[2.7 ** contacts[c].intent * (1.6 if contacts[c].level in ("manager", "director", "head") else 1.0)
                                             for c in free], k=1)[0]
        used_primary.add(primary)
        committee = [c for c in people if c != primary][:4]
        has_dm = contacts[primary].is_decision_maker or any(contacts[c].is_decision_maker for c in committee)
        quality = accounts[a_idx].fit + 0.6 * contacts[primary].intent + (0.7 if has_dm else 0.0) + rng.gauss(0, 0.7)
        drafts.append((d_idx, a_idx, primary, committee, quality))

    closed_drafts = sorted((d for d in drafts if d[0] in closed), key=lambda d: d[4], reverse=True)
    n_won = round(len(closed_drafts) * 0.56)
    won_ids = {d[0] for d in closed_drafts[:n_won]}
    deals = []
    deals_at_account: dict[int, int] = {}
    for d_idx, a_idx, primary, committee, _quality in drafts:
        status = "open" if d_idx not in closed else ("won" if d_idx in won_ids else "lost")
        if status == "won" and not any(contacts[c].is_decision_maker for c in [primary, *committee]) and committee and rng.random() < 0.8:
            promote_to_decision_maker(rng, contacts[committee[0]])
        expansion = deals_at_account.get(a_idx, 0) > 0
        deals_at_account[a_idx] = deals_at_account.get(a_idx, 0) + 1
        deals.append(_deal(rng, status, accounts[a_idx], a_idx, primary, committee, users, as_of, expansion))
    return deals


def _senior_owner(rng: random.Random, owner: int, amount: Decimal, users: list[UserRec]) -> int:
    if amount < 100_000 or users[owner].is_senior or rng.random() > 0.6:
        return owner
    seniors = [i for i, u in enumerate(users) if u.role == "rep" and u.is_senior and u.team == users[owner].team]
    return seniors[0] if seniors else owner


def _deal(rng: random.Random, status: str, account: AccountRec, a_idx: int, primary: int, committee: list[int],
          users: list[UserRec], as_of: datetime, expansion: bool) -> DealRec:
    window = WINDOW_DAYS - 4
    emp = account.employee_count
    all_lengths = _durations(rng, vocab.OPEN_STAGES, emp)
    planned_cycle = sum(all_lengths) * 1.1
    quiet_from = None
    if status == "won":
        lengths = _fit_in_window(all_lengths, window - 6)
        cycle = sum(lengths)
        closed_at = as_of - days(rng.uniform(1, window - cycle))
        opened_at = closed_at - days(cycle)
        path = _path(opened_at, vocab.OPEN_STAGES, lengths) + [(vocab.WON_STAGE, whole_seconds(closed_at))]
    elif status == "lost":
        k = rng.choices(range(5), weights=LOST_AT_WEIGHTS, k=1)[0]
        stages = vocab.OPEN_STAGES[: k + 1]
        # Most lost deals fade out; some are lost loudly, right after an active evaluation.
        quiet = rng.uniform(10, 28) if rng.random() < 0.75 else rng.uniform(0.5, 3)
        lengths = _fit_in_window(all_lengths[: k + 1][:-1] + [all_lengths[k] * 0.5 + quiet], window - 6)
        cycle = sum(lengths)
        closed_at = as_of - days(rng.uniform(1, window - cycle))
        opened_at = closed_at - days(cycle)
        quiet_from = closed_at - days(min(quiet, lengths[-1] * 0.85))
        path = _path(opened_at, stages, lengths) + [(vocab.LOST_STAGE, whole_seconds(closed_at))]
    else:
        k = rng.choices(range(5), weights=OPEN_STAGE_WEIGHTS, k=1)[0]
        stages = vocab.OPEN_STAGES[: k + 1]
        stalled = rng.random() < 0.25
        in_stage = all_lengths[k] + rng.uniform(12, 40) if stalled else all_lengths[k] * rng.uniform(0.05, 0.95)
        lengths = _fit_in_window(all_lengths[:k] + [in_stage], window)
        opened_at = as_of - days(sum(lengths))
        path = _path(opened_at, stages, lengths)
        if stalled and path[-1][1] + days(2) < as_of - days(3):
            quiet_from = max(path[-1][1] + days(2), as_of - days(rng.uniform(10, 28)))
        closed_at = None
    amount = _amount(rng, emp, expansion)
    owner = _senior_owner(rng, account.owner, amount, users)
    path = _in_office_hours(path, users[owner], as_of)
    opened_at = path[0][1]
    if closed_at is not None:
        closed_at = path[-1][1]
    product_key = ("forecasting" if rng.random() < 0.6 else "warehouse") if expansion else ("growth" if emp < 500 else "enterprise")
    product = vocab.PRODUCTS[product_key]
    short = account.name.split(" ")[0] if len(account.name) > 28 else account.name
    name = f"{short} – {product}" + (" expansion" if expansion else "")
    expected = (opened_at + days(planned_cycle)).date()
    attributes: dict = {}
    competitor = rng.choice(vocab.COMPETITORS) if rng.random() < {"won": 0.2, "lost": 0.55, "open": 0.3}[status] else None
    if status == "won":
        expected = (closed_at + days(rng.uniform(-6, 10))).date()
        attributes["contract_term_months"] = rng.choice((12, 12, 12, 24, 36))
    elif status == "lost":
        reason = "chose competitor" if competitor and rng.random() < 0.7 else rng.choice(vocab.LOST_REASONS[1:])
        attributes["lost_reason"] = reason
        if reason == "chose competitor":
            attributes["competitor"] = competitor
    elif quiet_from is None and expected <= as_of.date():
        expected = (as_of + days(rng.uniform(7, 45))).date()  # a healthy deal's date moves with it
    if competitor and status == "open":
        attributes["competitor"] = competitor
    return DealRec(
        name=name, account=a_idx, primary_contact=primary, owner=owner, product=product, stage=path[-1][0],
        amount=amount, currency=account.currency, status=status, opened_at=opened_at, expected_close=expected,
        stage_entered_at=path[-1][1], closed_at=whole_seconds(closed_at) if closed_at else None,
        attributes=attributes, path=path, committee=committee, quiet_from=whole_seconds(quiet_from) if quiet_from else None,
        competitor=competitor or rng.choice(vocab.COMPETITORS),
    )


def stage_history(deals: list[DealRec], users: list[UserRec]) -> list[StageRec]:
    rows = []
    for d_idx, deal in enumerate(deals):
        previous = None
        for stage, at in deal.path:
            rows.append(StageRec(deal=d_idx, from_stage=previous, to_stage=stage, changed_at=at, changed_by=users[deal.owner].name))
            previous = stage
    return rows


def settle_lifecycle(rng: random.Random, contacts: list[ContactRec], deals: list[DealRec], as_of: datetime) -> None:
    """Set each contact's lifecycle stage, outcome date and first-touch time from the deals they are in."""
    window_start = as_of - days(WINDOW_DAYS)
    rank = {"won": 3, "open": 2, "lost": 1}
    best: dict[int, DealRec] = {}
    for deal in deals:
        held = best.get(deal.primary_contact)
        if held is None or rank[deal.status] > rank[held.status]:
            best[deal.primary_contact] = deal
    committee_won: dict[int, DealRec] = {}
    # A colleague pulled into a deal was in the CRM by the time the deal was well under way.
    committee_seen: dict[int, datetime] = {}
    for deal in deals:
        end = deal.closed_at or as_of
        for c in deal.committee:
            seen = deal.opened_at + (end - deal.opened_at) * 0.3
            committee_seen[c] = min(committee_seen.get(c, seen), seen)
        if deal.status == "won":
            for c in deal.committee:
                if c not in best and (contacts[c].is_decision_maker or rng.random() < 0.5):
                    committee_won.setdefault(c, deal)

    for c_idx, contact in enumerate(contacts):
        deal = best.get(c_idx)
        if deal is not None:
            lead_time = days(rng.uniform(3, 30))
            contact.created_at = min(max(window_start + timedelta(hours=rng.uniform(1, 48)), deal.opened_at - lead_time),
                                     deal.opened_at - timedelta(hours=1))
            if deal.status == "won":
                contact.lifecycle_stage, contact.outcome_at = "customer", deal.closed_at
            elif deal.status == "lost":
                contact.lifecycle_stage, contact.outcome_at = "disqualified", deal.closed_at
                contact.attributes["disqualify_reason"] = {"chose competitor": "using a competitor under contract",
                                                           "no budget": "no budget"}.get(deal.attributes.get("lost_reason", ""),
                                                                                          "no response after sequence")
            else:
                contact.lifecycle_stage = "sql" if deal.stage == "Prospecting" else "opportunity"
        elif c_idx in committee_won:
            deal = committee_won[c_idx]
            span = (deal.closed_at - deal.opened_at).total_seconds()
            contact.created_at = max(window_start + timedelta(hours=1), deal.opened_at + timedelta(seconds=span * rng.uniform(-0.2, 0.6)))
            contact.lifecycle_stage, contact.outcome_at = "customer", deal.closed_at
        else:
            _settle_without_deal(rng, contact, window_start, as_of, committee_seen.get(c_idx))
        contact.created_at = whole_seconds(contact.created_at)
        contact.updated_at = contact.outcome_at or contact.created_at


def _settle_without_deal(rng: random.Random, contact: ContactRec, window_start: datetime, as_of: datetime,
                         seen_by: datetime | None) -> None:
    contact.created_at = window_start + timedelta(seconds=(as_of - window_start - timedelta(hours=2)).total_seconds() * rng.random())
    if seen_by is not None:
        contact.created_at = min(contact.created_at, seen_by)
    age_days = (as_of - contact.created_at).total_seconds() / 86400
    signal = contact.intent + rng.gauss(0, 0.5)
    p_disqualified = 1 / (1 + 2.7 ** (1.4 + 1.6 * signal))
    if age_days > 12 and (rng.random() < p_disqualified or contact.account is None and rng.random() < 0.5):
        contact.lifecycle_stage = "disqualified"
        contact.outcome_at = whole_seconds(contact.created_at + days(rng.uniform(6, min(age_days - 1, 45))))
        reason = "student or job seeker" if contact.account is None else rng.choice(vocab.DISQUALIFY_REASONS)
        contact.attributes["disqualify_reason"] = reason
    elif signal > 2.0:
        contact.lifecycle_stage = "sql"
    elif signal > 1.1:
        contact.lifecycle_stage = "mql"
    else:
        contact.lifecycle_stage = "lead"
