"""Lead scores: the scored contacts table, its filters, the score distribution and one contact's history.

The table is paged in SQL (100,000 contacts cost one indexed page, not a full load); the trend
("change since last week") is computed for the rows on the page only.

Rights: a rep sees the contacts they own; choosing someone else's is refused naming `view_all`.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.auth.rights import authorize_view, require, visible_owner
from crm_core.errors import NotFound, UserError
from crm_core.learning import newest_snapshot
from crm_core.models import Account, Contact, Decision, ScoreHistory, User

TREND_WINDOW = timedelta(days=7)
OUTCOME_STAGES = ("customer", "disqualified")


class LeadFilters(BaseModel):
    """What the Lead scores page filters on. Empty tuples mean 'any'."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tiers: tuple[str, ...] = ()
    owner_ids: tuple[int, ...] = ()
    sources: tuple[str, ...] = ()
    score_min: int = Field(default=0, ge=0, le=100)
    score_max: int = Field(default=100, ge=0, le=100)
    search: str | None = None                # name, email or company, case-insensitive
    include_closed: bool = False             # customers and disqualified contacts too

    @model_validator(mode="after")
    def _range(self) -> LeadFilters:
        if self.score_min > self.score_max:
            raise UserError(f"lead filter: the lowest score {self.score_min} is above the highest {self.score_max}")
        return self

    @property
    def full_range(self) -> bool:
        return self.score_min == 0 and self.score_max == 100


class LeadRow(BaseModel):
    id: int
    name: str
    email: str | None
    account: str | None
    title: str | None
    score: int | None
    tier: str | None
    change_7d: int | None          # score now minus the score a week ago; None: not scored a week ago
    owner: str | None
    source: str | None
    lifecycle_stage: str
    next_action: str | None
    last_activity_at: datetime | None
    score_updated_at: datetime | None
    proposed_score: int | None = None   # a score waiting in the approval queue, not yet applied
    proposed_tier: str | None = None


class ScoringModelStatus(BaseModel):
    """What scores the leads now, as the newest learned snapshot says."""

    learned: bool
    words: str | None = None            # e.g. "logistic regression"
    validated_auc: float | None = None  # mean AUC over later periods of this book
    auc_low: float | None = None
    auc_high: float | None = None
    periods: int = 0
    trained_at: datetime | None = None
    outcomes: int = 0
    reason: str | None = None           # why no learned model is used
    note: str | None = None             # why a more accurate candidate was not used


class LeadPage(BaseModel):
    rows: list[LeadRow]
    total: int


class LeadFilterOptions(BaseModel):
    owners: list[tuple[int, str]]
    sources: list[str]


class ScoreBucket(BaseModel):
    low: int                       # 0, 10, ... 90 (90 holds 90-100)
    high: int
    contacts: int
    by_tier: dict[str, int] = Field(default_factory=dict)  # the same contacts by tier ("none": scored, no tier)


class ScoreDistribution(BaseModel):
    buckets: list[ScoreBucket]
    by_tier: dict[str, int]
    unscored: int


class ScorePoint(BaseModel):
    scored_at: datetime
    score: int
    tier: str
    change: int | None             # against the previous point
    reason: str | None             # what moved it, as the scorer wrote it
    decision_id: int | None
    agent: str | None
    reasoning: str | None


class ScoreHistoryView(BaseModel):
    contact_id: int
    name: str
    score: int | None
    tier: str | None
    points: list[ScorePoint]


def _where(filters: LeadFilters) -> list:
    conds = []
    if not filters.include_closed:
        conds.append(Contact.lifecycle_stage.not_in(OUTCOME_STAGES))
    if filters.tiers:
        conds.append(Contact.tier.in_(filters.tiers))
    if filters.owner_ids:
        conds.append(Contact.owner_id.in_(filters.owner_ids))
    if filters.sources:
        conds.append(Contact.source.in_(filters.sources))
    if not filters.full_range:
        conds.append(Contact.score.between(filters.score_min, filters.score_max))
    if filters.search and filters.search.strip():
        needle = f"%{filters.search.strip().lower()}%"
        name = func.lower(func.coalesce(Contact.first_name, "") + " " + func.coalesce(Contact.last_name, ""))
        company = select(Account.id).where(func.lower(Account.name).like(needle))
        conds.append(or_(name.like(needle), Contact.email_normalized.like(needle), Contact.account_id.in_(company)))
    return conds


def _name(first: str | None, last: str | None, email: str | None, contact_id: int) -> str:
    return " ".join(p for p in (first, last) if p) or email or f"contact {contact_id}"


def scores_a_week_ago(session: Session, contact_ids: list[int], now: datetime) -> dict[int, int]:
    """The newest score each contact had at least a week ago (contacts on one page)."""
    if not contact_ids:
        return {}
    cutoff = now - TREND_WINDOW
    newest = (
        select(ScoreHistory.contact_id, func.max(ScoreHistory.scored_at).label("at"))
        .where(ScoreHistory.contact_id.in_(contact_ids), ScoreHistory.scored_at <= cutoff)
        .group_by(ScoreHistory.contact_id).subquery()
    )
    rows = session.execute(
        select(ScoreHistory.contact_id, ScoreHistory.score, ScoreHistory.id)
        .join(newest, and_(ScoreHistory.contact_id == newest.c.contact_id, ScoreHistory.scored_at == newest.c.at))
        .order_by(ScoreHistory.id)
    ).all()
    return {contact_id: score for contact_id, score, _ in rows}  # the later id wins a tie


def _visible(filters: LeadFilters, actor: Actor) -> LeadFilters:
    """The filters narrowed to what the actor may see: a rep's own contacts only."""
    own = visible_owner(actor)
    if own is None:
        return filters
    if any(owner != own for owner in filters.owner_ids):
        require(actor, "view_all", doing="see the leads of someone else")
    return filters.model_copy(update={"owner_ids": (own,)})


def lead_table(session: Session, filters: LeadFilters, limit: int = 50, offset: int = 0, *, actor: Actor) -> LeadPage:
    """Scored contacts, highest score first (unscored last), one page at a time."""
    conds = _where(_visible(filters, actor))
    total = int(session.scalar(select(func.count()).select_from(Contact).where(*conds)) or 0)
    rows = session.execute(
        select(Contact.id, Contact.first_name, Contact.last_name, Contact.email, Account.name, Contact.title, Contact.score,
               Contact.tier, User.name, Contact.source, Contact.lifecycle_stage, Contact.next_action,
               Contact.last_activity_at, Contact.score_updated_at)
        .outerjoin(Account, Account.id == Contact.account_id)
        .outerjoin(User, User.id == Contact.owner_id)
        .where(*conds)
        .order_by(Contact.score.is_(None), Contact.score.desc(), Contact.id)
        .limit(limit).offset(offset)
    ).all()
    week_ago = scores_a_week_ago(session, [r[0] for r in rows if r[6] is not None], clock.now())
    proposed = proposed_scores(session, [r[0] for r in rows])
    out = []
    for (cid, first, last, email, account, title, score, tier, owner, source, stage, next_action, last_at, scored_at) in rows:
        before = week_ago.get(cid)
        out.append(LeadRow(
            id=cid, name=_name(first, last, email, cid), email=email, account=account, title=title, score=score, tier=tier,
            change_7d=(score - before) if score is not None and before is not None else None, owner=owner, source=source,
            lifecycle_stage=stage, next_action=next_action, last_activity_at=last_at, score_updated_at=scored_at,
            proposed_score=proposed.get(cid, (None, None))[0], proposed_tier=proposed.get(cid, (None, None))[1],
        ))
    return LeadPage(rows=out, total=total)


def proposed_scores(session: Session, contact_ids: list[int]) -> dict[int, tuple[int, str | None]]:
    """contact id -> (score, tier) of its newest lead score still waiting in the approval queue."""
    if not contact_ids:
        return {}
    out: dict[int, tuple[int, str | None]] = {}
    for subject_id, actions in session.execute(
        select(Decision.subject_id, Decision.actions)
        .where(Decision.agent == "lead_scoring", Decision.status == "queued", Decision.subject_type == "contact",
               Decision.subject_id.in_(contact_ids))
        .order_by(Decision.created_at, Decision.id)
    ):
        for action in actions or []:
            params = action.get("params") or {}
            if action.get("type") == "update_lead_score" and params.get("score") is not None:
                out[subject_id] = (int(params["score"]), params.get("tier"))
    return out


def scoring_model_status(session: Session) -> ScoringModelStatus | None:
    """The newest learned lead scorer, or why the prior scores; None before anything was learned."""
    snap = newest_snapshot(session)
    if snap is None:
        return None
    m = snap.metrics or {}
    interval = m.get("holdout_auc_interval") or [None, None]
    if m.get("kind") != "learned":
        return ScoringModelStatus(learned=False, trained_at=snap.trained_at, outcomes=int(m.get("outcomes") or 0),
                                  reason=m.get("reason"))
    return ScoringModelStatus(
        learned=True, words=m.get("candidate_words"), validated_auc=m.get("holdout_auc"), auc_low=interval[0],
        auc_high=interval[1], periods=len(m.get("folds") or []), trained_at=snap.trained_at,
        outcomes=int(m.get("contacts") or 0), note=m.get("note"),
    )


def lead_filter_options(session: Session, *, max_sources: int = 100) -> LeadFilterOptions:
    owners = [(uid, name) for uid, name in session.execute(select(User.id, User.name).order_by(User.name))]
    sources = [s for (s,) in session.execute(
        select(Contact.source).where(Contact.source.is_not(None)).group_by(Contact.source)
        .order_by(func.count().desc(), Contact.source).limit(max_sources)
    )]
    return LeadFilterOptions(owners=owners, sources=sorted(sources, key=str.lower))


def score_distribution(session: Session, filters: LeadFilters, *, actor: Actor) -> ScoreDistribution:
    """Contacts per score decile and per tier, under the same filters as the table."""
    conds = _where(_visible(filters, actor))
    bucket = Contact.score // 10  # integer division on both back-ends; 100 joins the 90s below
    counts: dict[int, dict[str, int]] = {}
    for b, tier, n in session.execute(
        select(bucket, Contact.tier, func.count()).where(*conds, Contact.score.is_not(None)).group_by(bucket, Contact.tier)
    ):
        split = counts.setdefault(min(int(b), 9) * 10, {})
        split[tier or "none"] = split.get(tier or "none", 0) + int(n)
    by_tier: dict[str, int] = {}
    for split in counts.values():
        for tier, n in split.items():
            by_tier[tier] = by_tier.get(tier, 0) + n
    unscored = int(session.scalar(select(func.count()).select_from(Contact).where(*conds, Contact.score.is_(None))) or 0)
    buckets = [ScoreBucket(low=low, high=low + 10 if low < 90 else 100, contacts=sum(counts.get(low, {}).values()),
                           by_tier=counts.get(low, {})) for low in range(0, 100, 10)]
    return ScoreDistribution(buckets=buckets, by_tier=by_tier, unscored=unscored)


def score_history(session: Session, contact_id: int, *, actor: Actor, limit: int = 500) -> ScoreHistoryView:
    """Every score the contact had, oldest first, with what moved it and the decision behind it."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    authorize_view(actor, contact.owner_id, doing="see this contact's score history")
    rows = session.execute(
        select(ScoreHistory, Decision.agent, Decision.reasoning)
        .outerjoin(Decision, Decision.id == ScoreHistory.decision_id)
        .where(ScoreHistory.contact_id == contact_id)
        .order_by(ScoreHistory.scored_at.desc(), ScoreHistory.id.desc()).limit(limit)
    ).all()
    points: list[ScorePoint] = []
    previous: int | None = None
    for point, agent, reasoning in reversed(rows):
        points.append(ScorePoint(
            scored_at=point.scored_at, score=point.score, tier=point.tier,
            change=point.score - previous if previous is not None else None,
            reason=point.reason, decision_id=point.decision_id, agent=agent, reasoning=reasoning,
        ))
        previous = point.score
    return ScoreHistoryView(contact_id=contact.id, name=contact.full_name, score=contact.score, tier=contact.tier, points=points)
