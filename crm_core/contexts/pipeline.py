"""The store -> pipeline contexts, and the deal-risk weights learned from the store's closed deals.

`load_book()` reads every deal with its stage changes and its touches (activities, emails and
meetings tied to the deal) into plain `DealHistory` records; the learning code cuts them at any
moment, so the same read serves a live run and every date of a back-test. `prepare()` reads the
newest weights the learn job stored in `model_snapshots` (`learn_pipeline_model`: learned from
the deals closed before then, see `agents.pipeline.signals`); on a fresh store it learns once
through that same function, and a run about the past learns as of then and stores nothing. `build()` reads each open deal's signals at `as_of`
and puts them, with what the book says each one predicts, into the context.

Nothing after `as_of` is read: stage changes, touches, notes and emails are cut at `as_of`,
outcomes count only if the deal closed before it, a flag written after it is not "current".
Deal columns without history (expected close, amount, product, owner) are read as they are now,
and so are contact titles.

Untrusted text (notes and other activity payload texts, buyer emails, meeting transcripts) is read
here only: each text is matched against the configured competitor names (`CRM_COMPETITORS`,
comma-separated) and generic phrases ("evaluating other vendors", "competitor", ...); the agent
gets the dates of the matches (the signal), the count, the names matched, and the latest match's
surrounding words as fenced `UntrustedText`.

A decision-maker is a contact with a C-level, VP, head-of or director title (`seniority` of
`agents.learning.features`) who is the deal's primary contact or works at the deal's account;
engaged means an activity, an email from them, a reply or a meeting with them.

Who reviews a red deal depends on its size against the book (amounts in the reporting currency)
and on how long it has been red: `pipeline_routing` reads both for each context.

What every deal of a run shares (the learned model's summary and its band table, the cut-offs, the
routing rule, the policy, people's verdicts) rides in each deal's context as one book block
(`book_pipeline`), sent once in the cached system block.

`subjects()` lists `REVIEW_ID` (0) besides the deal ids when a review of the whole pipeline is
due (none in the last `FRESH_FLAG_HOURS`); `build()` then adds one `Review` context.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from agents.base import UntrustedText
from agents.learning.features import seniority
from agents.pipeline import (
    FRESH_FLAG_HOURS,
    PATTERN_QUIET_DAYS,
    Context,
    CurrentFlag,
    OpenDeal,
    Person,
    Review,
    RiskEstimate,
    SignalReading,
)
from agents.pipeline.signals import (
    SIGNAL_LABELS,
    Book,
    DealHistory,
    NotEnoughHistory,
    RiskModel,
    SnapshotCache,
    learn,
    prior_flag,
    prior_probability,
    PRIOR_AMBER,
    PRIOR_RED,
    PRIOR_WEIGHTS,
    read_signals,
)
from crm_core import clock
from crm_core.contexts.book_pipeline import pipeline_block
from crm_core.contexts.pipeline_routing import deal_sizes, red_history
from crm_core.contexts.reading import CHUNK, chunks
from crm_core.importing.history import STALE_MARK
from crm_core.models import Account, Activity, Contact, Deal, Decision, Email, Meeting, ModelSnapshot, StageHistory, Task, User
from crm_core.models.enums import DealStatus, MeetingStatus, TaskStatus
from crm_core.settings import get_settings

AGENT = "pipeline"
MODEL_KIND = "pipeline_loss"
MODEL_VERSION = "pipeline-signals/2"  # bump when signals change: the recorded snapshots then differ
NOTES_SHOWN = 3
TEXT_CHARS = 1200
SNIPPET_CHARS = 160
REVIEW_ID = 0            # the whole pipeline, as a subject of a run
_REPLY_ACTIVITIES = {"email_replied", "meeting"}
_NOT_A_TOUCH = {"stage_change"}
_TEXT_KEYS = ("text", "body", "note", "notes", "summary", "comment", "description", "transcript")
_DM_LEVELS = {"c_level", "vp", "director"}  # `seniority` files "head of" under vp or director
_PENDING = ("proposed", "queued", "approved")
GENERIC_COMPETITOR_PHRASES = (
    r"evaluating (?:other|alternative) (?:vendors?|providers?|solutions?|tools?)",
    r"going with (?:another|a different) (?:provider|vendor|solution|tool)",
    r"competitors?", r"competing (?:offer|quote|proposal|vendor|bid)s?",
)


# -- configuration and matching untrusted text --------------------------------------------------------
@dataclass(frozen=True)
class CompetitorMatcher:
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        named = [rf"(?<!\w){re.escape(n)}(?!\w)" for n in sorted(self.names, key=len, reverse=True)]
        generic = [rf"\b{p}\b" for p in GENERIC_COMPETITOR_PHRASES]
        object.__setattr__(self, "_rx", re.compile("|".join(named + generic), re.I))
        object.__setattr__(self, "_by_lower", {n.lower(): n for n in self.names})

    def find(self, text: str) -> tuple[list[str], str] | None:
        """(configured names found, else ["generic phrase"]; the words around the first match), or None."""
        hits = list(self._rx.finditer(text))  # type: ignore[attr-defined]
        if not hits:
            return None
        names = [self._by_lower[h.group(0).lower()] for h in hits if h.group(0).lower() in self._by_lower]  # type: ignore[attr-defined]
        first = hits[0]
        half = SNIPPET_CHARS // 2
        start, end = max(0, first.start() - half), min(len(text), first.end() + half)
        snippet = ("..." if start else "") + " ".join(text[start:end].split()) + ("..." if end < len(text) else "")
        return list(dict.fromkeys(names)) or ["generic phrase"], snippet


def competitor_matcher(names: Sequence[str] | None = None) -> CompetitorMatcher:
    return CompetitorMatcher(tuple(names) if names is not None else get_settings().competitor_names)


def _payload_text(payload: dict | None) -> str:
    if not isinstance(payload, dict):
        return ""
    return "\n".join(str(payload[k]) for k in _TEXT_KEYS if isinstance(payload.get(k), str) and payload[k].strip())


def deal_texts(session: Session, ids: Sequence[int] | None = None,
               as_of: datetime | None = None) -> Iterator[tuple[int, datetime, str, str]]:
    """(deal_id, dated, what, text) of every untrusted text on the deals: activity payload texts,
    buyer emails, transcripts of meetings held. `ids` None: every deal; `as_of`: nothing dated after."""
    scopes: list[list[int] | None] = [None] if ids is None else [list(ids[i:i + CHUNK]) for i in range(0, len(ids), CHUNK)]
    for scope in scopes:
        def cut(query, deal_col, when):
            query = query.where(deal_col.is_not(None)) if scope is None else query.where(deal_col.in_(scope))
            return query.where(when <= as_of) if as_of is not None else query

        for deal_id, at, type_, payload in session.execute(cut(
            select(Activity.deal_id, Activity.occurred_at, Activity.type, Activity.payload)
            .where(Activity.type.not_in(_NOT_A_TOUCH)), Activity.deal_id, Activity.occurred_at)
        ):
            text = _payload_text(payload)
            if text:
                yield deal_id, at, "note" if type_ == "note" else f"{type_.replace('_', ' ')} record", text
        for deal_id, at, subject, body in session.execute(cut(
            select(Email.deal_id, Email.sent_at, Email.subject, Email.body).where(Email.direction == "inbound"),
            Email.deal_id, Email.sent_at)
        ):
            text = f"{subject or ''}\n{body or ''}".strip()
            if text:
                yield deal_id, at, "email from the buyer", text
        for deal_id, at, transcript in session.execute(cut(
            select(Meeting.deal_id, Meeting.ends_at, Meeting.transcript)
            .where(Meeting.transcript.is_not(None), Meeting.status != MeetingStatus.CANCELLED.value),
            Meeting.deal_id, Meeting.ends_at)
        ):
            if transcript and transcript.strip():
                yield deal_id, at, "meeting transcript", transcript


def _decision_makers(session: Session) -> tuple[dict[int, datetime], dict[int, list[datetime]], dict[int, list[int]]]:
    """Decision-makers: when each became known, when each engaged, and who works at each account."""
    known: dict[int, datetime] = {}
    by_account: dict[int, list[int]] = defaultdict(list)
    for cid, account_id, title, created in session.execute(select(Contact.id, Contact.account_id, Contact.title, Contact.created_at)):
        if seniority(title) in _DM_LEVELS:
            known[cid] = created
            if account_id is not None:
                by_account[account_id].append(cid)
    touches: dict[int, list[datetime]] = defaultdict(list)
    if not known:
        return known, touches, by_account
    for cid, type_, at in session.execute(
        select(Activity.contact_id, Activity.type, Activity.occurred_at).where(Activity.contact_id.is_not(None))
    ):
        if cid in known and type_ not in _NOT_A_TOUCH:
            touches[cid].append(at)
    for cid, direction, sent, replied in session.execute(
        select(Email.contact_id, Email.direction, Email.sent_at, Email.replied_at).where(Email.contact_id.is_not(None))
    ):
        if cid in known:
            if direction == "inbound":
                touches[cid].append(sent)
            elif replied is not None:
                touches[cid].append(replied)
    for cid, starts in session.execute(
        select(Meeting.contact_id, Meeting.starts_at)
        .where(Meeting.contact_id.is_not(None), Meeting.status != MeetingStatus.CANCELLED.value)
    ):
        if cid in known:
            touches[cid].append(starts)
    for cid, times in touches.items():
        # Imported contacts may carry the import time as created_at: their first touch says they were known.
        known[cid] = min(known[cid], min(times))
    return known, touches, by_account


# -- reading the book ---------------------------------------------------------------------------------
def load_book(session: Session, *, competitors: Sequence[str] | None = None) -> Book:
    """Every deal with its whole logged history (the learning code cuts it at each moment)."""
    deals: dict[int, DealHistory] = {}
    people: dict[int, tuple[int | None, int | None]] = {}
    for d in session.execute(
        select(Deal.id, Deal.opened_at, Deal.created_at, Deal.closed_at, Deal.status, Deal.product, Deal.owner_id,
               Deal.amount, Deal.expected_close, Deal.primary_contact_id, Deal.account_id, Deal.attributes)
    ):
        if STALE_MARK in (d.attributes or {}):
            continue  # lost by a history import's rule, not by an event: nothing to learn from it
        people[d.id] = (d.primary_contact_id, d.account_id)
        began = d.opened_at or d.created_at
        closed = d.closed_at if d.status in ("won", "lost") else None
        if closed is not None and closed < began:
            began = closed
        deals[d.id] = DealHistory(
            deal_id=d.id, began=began, closed_at=closed, outcome=d.status if closed is not None else None,
            product=d.product, owner_id=d.owner_id, amount=float(d.amount) if d.amount is not None else None,
            expected_close=d.expected_close,
        )
    for deal_id, at, frm, to in session.execute(
        select(StageHistory.deal_id, StageHistory.changed_at, StageHistory.from_stage, StageHistory.to_stage)
        .order_by(StageHistory.deal_id, StageHistory.changed_at, StageHistory.id)
    ):
        if deal_id in deals:
            deals[deal_id].stages.append((at, frm, to))
    touches: dict[int, list[datetime]] = defaultdict(list)
    replies: dict[int, list[datetime]] = defaultdict(list)
    for deal_id, type_, at in session.execute(
        select(Activity.deal_id, Activity.type, Activity.occurred_at).where(Activity.deal_id.is_not(None))
    ):
        if type_ in _NOT_A_TOUCH:
            continue
        touches[deal_id].append(at)
        if type_ in _REPLY_ACTIVITIES:
            replies[deal_id].append(at)
    for deal_id, direction, sent, replied in session.execute(
        select(Email.deal_id, Email.direction, Email.sent_at, Email.replied_at).where(Email.deal_id.is_not(None))
    ):
        touches[deal_id].append(sent)
        if direction == "inbound":
            replies[deal_id].append(sent)
        elif replied is not None:
            touches[deal_id].append(replied)
            replies[deal_id].append(replied)
    for deal_id, starts in session.execute(
        select(Meeting.deal_id, Meeting.starts_at)
        .where(Meeting.deal_id.is_not(None), Meeting.status != MeetingStatus.CANCELLED.value)
    ):
        touches[deal_id].append(starts)
        replies[deal_id].append(starts)
    for deal_id, times in touches.items():
        if deal_id in deals:
            # The same reply may be logged as an activity and as an email: once per minute is enough.
            deals[deal_id].touches = sorted(set(t.replace(second=0, microsecond=0) for t in times))
    for deal_id, times in replies.items():
        if deal_id in deals:
            deals[deal_id].replies = sorted(set(t.replace(second=0, microsecond=0) for t in times))
    matcher = competitor_matcher(competitors)
    for deal_id, at, _what, text in deal_texts(session):
        if deal_id in deals:
            deals[deal_id].texts.append(at)
            if matcher.find(text) is not None:
                deals[deal_id].mentions.append(at)
    known, dm_touches, by_account = _decision_makers(session)
    for deal_id, (primary, account_id) in people.items():
        dms = set(by_account.get(account_id, ())) if account_id is not None else set()
        if primary in known:
            dms.add(primary)
        deals[deal_id].dm_known = [known[c] for c in dms]
        deals[deal_id].dm_touches = [t for c in dms for t in dm_touches.get(c, ())]
    for deal in deals.values():
        deal.__post_init__()  # the lists filled after construction must be in time order too
    return Book(deals.values())


# -- the learned weights ------------------------------------------------------------------------------
@dataclass
class PreparedPipeline:
    as_of: datetime
    book: Book
    cache: SnapshotCache
    model: RiskModel | None
    fallback_reason: str | None
    snapshot_id: int | None = None


def outcomes_hash(book: Book, as_of: datetime) -> str:
    # The configured competitors change what the signal reads: a new list is a new model.
    digest = hashlib.sha256(f"{MODEL_VERSION}|{','.join(get_settings().competitor_names)}".encode())
    for d in book.closed_before(as_of):
        digest.update(f"|{d.deal_id}:{d.outcome}:{d.closed_at.isoformat()}".encode())
    return digest.hexdigest()


def _metrics(prepared: PreparedPipeline) -> dict:
    m = prepared.model
    if m is None:
        return {"kind": "prior", "as_of": prepared.as_of.isoformat(), "reason": prepared.fallback_reason}
    weights = {f"{s}={b}": round(float(w), 4) for (s, b), w in zip(m.columns, m.coef, strict=True)}
    return {
        "kind": "learned", "as_of": prepared.as_of.isoformat(), "deals": m.deals, "snapshots": m.snapshots,
        "holdout_auc": m.holdout_auc, "base_loss_rate": round(m.base_loss, 4), "red_min": round(m.red_min, 4),
        "amber_min": round(m.amber_min, 4), "horizon_days": round(m.horizon_days, 1), "regularisation_c": m.c,
        "weights": weights,
        "band_loss_rates": {f"{s}={b}": [st.snapshots, st.lost] for (s, b), st in m.stats.items()},
    }


def closed_deals_fingerprint(session: Session) -> list[str]:
    """Count and newest close of the won and lost deals: moves whenever an outcome the weights learn from does."""
    row = session.execute(
        select(func.count(), func.max(Deal.closed_at)).where(Deal.status.in_([DealStatus.WON.value, DealStatus.LOST.value]))
    ).one()
    return [str(v) for v in row]


def newest_model_snapshot(session: Session) -> ModelSnapshot | None:
    return session.scalars(
        select(ModelSnapshot).where(ModelSnapshot.agent == AGENT, ModelSnapshot.kind == MODEL_KIND, ModelSnapshot.version == 2)
        .order_by(ModelSnapshot.trained_at.desc(), ModelSnapshot.id.desc()).limit(1)
    ).first()


def prepare(session: Session, *, as_of: datetime, store: bool = True, book: Book | None = None) -> PreparedPipeline:
    """The newest stored weights (the learn job keeps them current); a fresh store learns once
    through `learn_pipeline_model`. A run about the past (a back-test) learns as of then and stores nothing."""
    book = book or load_book(session)
    live = store and abs((clock.now() - as_of).total_seconds()) < 60
    if live:
        stored = newest_model_snapshot(session)
        if stored is not None:
            cache = SnapshotCache(book)
            if stored.blob:
                model = RiskModel.from_dict(json.loads(stored.blob))
                return PreparedPipeline(as_of, book, cache, model, None, stored.id)
            return PreparedPipeline(as_of, book, cache, None, (stored.metrics or {}).get("reason"), stored.id)
    return learn_pipeline_model(session, as_of=as_of, store=live, book=book)


def learn_pipeline_model(session: Session, *, as_of: datetime, store: bool = True, book: Book | None = None,
                         force: bool = True) -> PreparedPipeline:
    """The learn step for the pipeline: weights from the deals closed before `as_of`, judged on
    later periods; with `store`, kept as the newest snapshot (with `force=False`, only when the
    closed deals changed since the newest one)."""
    book = book or load_book(session)
    cache = SnapshotCache(book)
    digest = outcomes_hash(book, as_of)
    fingerprint = closed_deals_fingerprint(session) if store else None
    if store and not force:
        newest = newest_model_snapshot(session)
        if newest is not None and newest.data_hash == digest:
            newest.metrics = {**(newest.metrics or {}), "deal_rows": fingerprint}
            model = RiskModel.from_dict(json.loads(newest.blob)) if newest.blob else None
            return PreparedPipeline(as_of, book, cache, model, (newest.metrics or {}).get("reason"), newest.id)
    model: RiskModel | None = None
    reason: str | None = None
    rejected: RiskModel | None = None
    try:
        model = learn(book, cache, as_of)
    except NotEnoughHistory as exc:
        reason = (f"{exc}; the signals are weighed by untested hypotheses until then (close deals as won or lost "
                  "to teach the weights)")
    if model is not None and not model.usable:
        # Judged on later periods, the weights did not clearly beat chance and the single rule: never used.
        rejected, model = model, None
        reason = f"{rejected.why_not_usable}; the signals are weighed by untested hypotheses instead"
    prepared = PreparedPipeline(as_of, book, cache, model, reason)
    if store:
        validation = {"rule": "used only when the mean AUC over later periods is at least 0.55, the lower end of its "
                              "90 % interval is above 0.5, and it beats the single rule"}
        judged = model or rejected
        if judged is not None:
            validation.update(fold_aucs=judged.fold_aucs, mean_auc=judged.holdout_auc, low=judged.holdout_auc_low,
                              rule_auc=judged.rule_auc, usable=judged.usable)
        stored = ModelSnapshot(agent=AGENT, trained_at=clock.now(), data_hash=digest,
                               metrics={**_metrics(prepared), "deal_rows": fingerprint},
                               blob=json.dumps(model.to_dict()).encode() if model is not None else None,
                               version=2, kind=MODEL_KIND, validation=validation,
                               chosen="learned" if model is not None else "prior")
        session.add(stored)
        session.flush()
        prepared.snapshot_id = stored.id
    return prepared


def pipeline_outcomes_changed(session: Session) -> bool:
    newest = newest_model_snapshot(session)
    return newest is None or (newest.metrics or {}).get("deal_rows") != closed_deals_fingerprint(session)


# -- contexts -----------------------------------------------------------------------------------------
def subjects(session: Session, *, as_of: datetime) -> list[int]:
    """Every deal open at `as_of` (engaged or created by then, not closed by then) that is due.

    Due means: not decided on by this agent in the last hours, or touched since its last decision.
    The hourly scan would otherwise store one identical decision per open deal per hour (the
    context changes with the clock, so the runner's unchanged-context check cannot catch it).
    """
    recent = _recently_decided(session, as_of)
    rows = session.execute(select(Deal.id, Deal.opened_at, Deal.created_at, Deal.closed_at, Deal.status).order_by(Deal.id))
    out = []
    open_any = False
    for deal_id, opened, created, closed, status in rows:
        began = opened or created
        if began > as_of:
            continue
        if status in ("won", "lost") and (closed is None or closed <= as_of):
            continue
        open_any = True
        if deal_id in recent:
            continue
        out.append(deal_id)
    if open_any and not _reviewed_recently(session, as_of):
        out.append(REVIEW_ID)
    return out


def _reviewed_recently(session: Session, as_of: datetime) -> bool:
    return session.scalar(
        select(Decision.id).where(Decision.agent == AGENT, Decision.subject_type == "pipeline", Decision.status != "failed",
                                  Decision.created_at > as_of - timedelta(hours=FRESH_FLAG_HOURS), Decision.created_at <= as_of)
        .limit(1)
    ) is not None


def recent_patterns(session: Session, as_of: datetime) -> list[str]:
    """Keys of the pattern reports still pending, or made in the last PATTERN_QUIET_DAYS days."""
    rows = session.execute(
        select(Decision.decision).where(
            Decision.agent == AGENT, Decision.subject_type == "pipeline", Decision.created_at <= as_of,
            or_(Decision.status.in_(_PENDING),
                (Decision.created_at > as_of - timedelta(days=PATTERN_QUIET_DAYS)) & (Decision.status != "failed")),
        )
    )
    keys = {d.get("pattern") for (d,) in rows if isinstance(d, dict)}
    return sorted(k for k in keys if isinstance(k, str))


def _recently_decided(session: Session, as_of: datetime) -> set[int]:
    """Deals decided on within FRESH_FLAG_HOURS before `as_of` with no touch or stage change since.

    Edits to the deal row itself do not count: executing the agent's own flag updates that row.
    """
    last = (
        select(Decision.subject_id.label("deal_id"), func.max(Decision.created_at).label("at"))
        .where(Decision.agent == "pipeline", Decision.subject_type == "deal", Decision.status != "failed",
               Decision.created_at > as_of - timedelta(hours=FRESH_FLAG_HOURS), Decision.created_at <= as_of)
        .group_by(Decision.subject_id)
        .subquery()
    )
    decided = {deal_id: at for deal_id, at in session.execute(select(last.c.deal_id, last.c.at))}
    if not decided:
        return set()
    touched: set[int] = set()
    for when, deal_col in ((Activity.occurred_at, Activity.deal_id), (StageHistory.changed_at, StageHistory.deal_id),
                           (Email.sent_at, Email.deal_id)):
        touched.update(session.scalars(
            select(deal_col).join(last, last.c.deal_id == deal_col).where(when > last.c.at, when <= as_of)
        ))
    return set(decided) - touched


def model_notes(prepared: PreparedPipeline) -> list[str]:
    """What every estimate of a run says about the model itself: why the prior, or a weak validation."""
    model = prepared.model
    if model is None:
        return [prepared.fallback_reason] if prepared.fallback_reason else []
    if model.holdout_auc is not None and model.holdout_auc < 0.6:
        return [f"the learned weights separate won from lost deals only a little in this book (AUC "
                f"{model.holdout_auc:.2f} on later periods): treat the flag as a hint"]
    return []


def estimate_for(prepared: PreparedPipeline, readings: Sequence) -> tuple[RiskEstimate, list[SignalReading]]:
    """The learned (or prior) loss probability and each reading with what the book says of its band."""
    model = prepared.model
    notes = model_notes(prepared)
    if model is None:
        p = prior_probability(readings)
        shown = [SignalReading(signal=r.signal, label=SIGNAL_LABELS[r.signal], band=r.band, value=r.value, words=r.words,
                               weight=PRIOR_WEIGHTS.get((r.signal, r.band), 0.0)) for r in readings]
        return RiskEstimate(kind="prior", loss_probability=round(p, 4), red_min=PRIOR_RED, amber_min=PRIOR_AMBER,
                            notes=notes, snapshot_id=prepared.snapshot_id), shown
    p = float(model.predict([readings])[0])
    shown = []
    for r in readings:
        stat = model.stats.get((r.signal, r.band))
        shown.append(SignalReading(
            signal=r.signal, label=SIGNAL_LABELS[r.signal], band=r.band, value=r.value, words=r.words,
            band_loss_rate=round(stat.rate, 4) if stat and stat.rate is not None else None,
            band_support=stat.snapshots if stat else 0, weight=round(model.weight(r), 4),
        ))
    return RiskEstimate(
        kind="learned", loss_probability=round(p, 4), red_min=round(model.red_min, 4), amber_min=round(model.amber_min, 4),
        base_loss_rate=round(model.base_loss, 4), holdout_auc=round(model.holdout_auc, 4) if model.holdout_auc is not None else None,
        trained_on_deals=model.deals, trained_on_snapshots=model.snapshots, learned_as_of=model.cutoff,
        snapshot_id=prepared.snapshot_id, notes=notes,
    ), shown


def _texts(session: Session, ids: list[int], as_of: datetime) -> dict[int, list[UntrustedText]]:
    """The newest notes and the newest buyer email of each deal, up to `as_of` (untrusted)."""
    notes: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    emails: dict[int, tuple[datetime, str]] = {}
    for chunk in chunks(ids):
        for deal_id, at, payload in session.execute(
            select(Activity.deal_id, Activity.occurred_at, Activity.payload)
            .where(Activity.deal_id.in_(chunk), Activity.type == "note", Activity.occurred_at <= as_of)
        ):
            text = (payload or {}).get("text") or (payload or {}).get("body")
            if text:
                notes[deal_id].append((at, str(text)[:TEXT_CHARS]))
        for deal_id, at, subject, body in session.execute(
            select(Email.deal_id, Email.sent_at, Email.subject, Email.body)
            .where(Email.deal_id.in_(chunk), Email.direction == "inbound", Email.sent_at <= as_of)
        ):
            if deal_id not in emails or at > emails[deal_id][0]:
                emails[deal_id] = (at, f"Subject: {subject or ''}\n{body or ''}"[:TEXT_CHARS])
    out: dict[int, list[UntrustedText]] = defaultdict(list)
    for deal_id, rows in notes.items():
        for at, text in sorted(rows, reverse=True)[:NOTES_SHOWN]:
            out[deal_id].append(UntrustedText(label=f"note on the deal, {at:%Y-%m-%d}", text=text))
    for deal_id, (at, text) in emails.items():
        out[deal_id].append(UntrustedText(label=f"latest email from the buyer, {at:%Y-%m-%d}", text=text))
    return out


def _open_tasks(session: Session, ids: list[int], as_of: datetime) -> dict[int, int]:
    out: dict[int, int] = {}
    for chunk in chunks(ids):
        out.update(session.execute(
            select(Task.deal_id, func.count(Task.id))
            .where(Task.deal_id.in_(chunk), Task.status == TaskStatus.OPEN.value, Task.created_at <= as_of)
            .group_by(Task.deal_id)
        ).all())
    return out


def _current(deal: Deal, as_of: datetime) -> CurrentFlag:
    known = deal.risk is not None and (deal.risk_updated_at is None or deal.risk_updated_at <= as_of)
    return CurrentFlag(
        risk=deal.risk if known else None, reason=deal.risk_reason if known else None,
        action=deal.risk_action if known else None, updated_at=deal.risk_updated_at if known else None,
        snoozed_until=deal.risk_snoozed_until, snooze_reason=deal.risk_snooze_reason, snoozed_by=deal.risk_snoozed_by,
    )


def _mentions(session: Session, ids: list[int], as_of: datetime,
              matcher: CompetitorMatcher) -> dict[int, tuple[int, list[str], UntrustedText]]:
    """Per deal: texts up to as_of naming a competitor, the names, and the latest one's words (untrusted)."""
    found: dict[int, list[tuple[datetime, str, list[str], str]]] = defaultdict(list)
    for deal_id, at, what, text in deal_texts(session, ids, as_of):
        hit = matcher.find(text)
        if hit is not None:
            found[deal_id].append((at, what, *hit))
    out = {}
    for deal_id, hits in found.items():
        hits.sort(key=lambda h: h[0])
        at, what, _names, snippet = hits[-1]
        names = list(dict.fromkeys(n for h in hits for n in h[2]))
        out[deal_id] = (len(hits), names, UntrustedText(label=f"{what}, {at:%Y-%m-%d}", text=snippet))
    return out


def _with_names(readings: list[SignalReading], names: list[str]) -> list[SignalReading]:
    """The competitor reading names what was matched: configured names (trusted), never the text itself."""
    if not names:
        return readings
    shown = ", ".join(n for n in names if n != "generic phrase") or "a generic phrase"
    return [r.model_copy(update={"words": f"{r.words}; matched: {shown}"}) if r.signal == "competitor" and r.band == "mentioned"
            else r for r in readings]


def build_review(session: Session, prepared: PreparedPipeline, as_of: datetime) -> Review:
    """Every deal open at `as_of`: owner, stage, stall ratio and amount, plus the patterns reported lately."""
    book = prepared.book
    norms = book.norms(as_of)
    users = {u.id: u for u in session.scalars(select(User))}

    def person(uid: int | None) -> Person | None:
        u = users.get(uid) if uid is not None else None
        return Person(id=u.id, name=u.name) if u is not None else None

    rows: list[OpenDeal] = []
    currencies: dict[str, int] = defaultdict(int)
    open_ids = [d.deal_id for d in book.deals if d.open_at(as_of)]
    currency_of: dict[int, str] = {}
    for chunk in chunks(open_ids):
        for deal_id, currency in session.execute(select(Deal.id, Deal.currency).where(Deal.id.in_(chunk))):
            currency_of[deal_id] = currency or "USD"
    for deal_id in open_ids:
        history = book.by_id[deal_id]
        at = history.stage_at(as_of)
        ratio = next((r.value for r in read_signals(history, as_of, norms) if r.signal == "time_in_stage"), None)
        owner = person(history.owner_id)
        manager = person(users[history.owner_id].manager_id) if owner is not None else None
        currencies[currency_of.get(deal_id, "USD")] += 1
        rows.append(OpenDeal(deal_id=deal_id, owner=owner, manager=manager, stage=at[0] if at else None,
                             time_in_stage_ratio=ratio,
                             amount=history.amount if book.amounts_known_open and history.amount else None))
    managers = sorted((Person(id=u.id, name=u.name) for u in users.values() if u.role == "manager"), key=lambda p: p.id)
    return Review(as_of=as_of.replace(second=0, microsecond=0), deals=rows, managers=managers,
                  currency=max(currencies, key=currencies.get) if currencies else "USD",
                  recent_patterns=recent_patterns(session, as_of))


def build(session: Session, subject_ids: Sequence[int], *, as_of: datetime,
          prepared: PreparedPipeline | None = None) -> list[Context | Review]:
    """One context per deal in `subject_ids` that was open at `as_of` (others are skipped), and
    a `Review` of the whole pipeline last when `REVIEW_ID` is among them."""
    if prepared is None:
        prepared = prepare(session, as_of=as_of, store=False)
    book = prepared.book
    review = [build_review(session, prepared, as_of)] if REVIEW_ID in subject_ids else []
    ids = [i for i in dict.fromkeys(subject_ids) if i in book.by_id and book.by_id[i].open_at(as_of)]
    if not ids:
        return review
    rows: dict[int, tuple[Deal, Account | None]] = {}
    for chunk in chunks(ids):
        for deal, account in session.execute(
            select(Deal, Account).outerjoin(Account, Account.id == Deal.account_id).where(Deal.id.in_(chunk))
        ):
            rows[deal.id] = (deal, account)
    users = {u.id: u for u in session.scalars(select(User))}
    tasks = _open_tasks(session, ids, as_of)
    texts = _texts(session, ids, as_of)
    norms = book.norms(as_of)
    mentions = _mentions(session, ids, as_of, competitor_matcher()) if norms.has_texts else {}
    sizes = deal_sizes(session, book, as_of)
    reds = red_history(session, ids, as_of)
    shared = pipeline_block(session, prepared, as_of=as_of, size=next(iter(sizes.values()), None),
                            notes=model_notes(prepared))
    contexts: list[Context | Review] = []
    for deal_id in ids:
        deal, account = rows[deal_id]
        history = book.by_id[deal_id]
        estimate, readings = estimate_for(prepared, read_signals(history, as_of, norms))
        count, names, snippet = mentions.get(deal_id, (0, [], None))
        readings = _with_names(readings, names)
        stage = history.stage_at(as_of)
        stage_name = stage[0] if stage else (deal.stage if deal.status == "open" and (deal.stage_entered_at or as_of) <= as_of else None)
        entered = stage[1] if stage else (deal.stage_entered_at if stage_name else None)
        owner = users.get(deal.owner_id) if deal.owner_id is not None else None
        manager = users.get(owner.manager_id) if owner is not None and owner.manager_id is not None else None
        current = _current(deal, as_of)
        red_since, manager_review_at = reds.get(deal_id, (None, None))
        if red_since is None and current.risk == "red":
            red_since = current.updated_at  # red by a person's or an import's hand: red at least since then
        contexts.append(Context(
            deal_id=deal_id,
            as_of=as_of.replace(second=0, microsecond=0),
            name=deal.name,
            stage=stage_name,
            product=deal.product,
            amount=float(deal.amount) if deal.amount is not None and book.amounts_known_open else None,
            currency=deal.currency or "USD",
            account_name=account.name if account else None,
            industry=account.industry if account else None,
            employee_count=account.employee_count if account else None,
            owner=Person(id=owner.id, name=owner.name) if owner else None,
            manager=Person(id=manager.id, name=manager.name) if manager else None,
            opened_at=history.began,
            expected_close=deal.expected_close,
            days_open=round((as_of - history.began).total_seconds() / 86400, 1),
            days_in_stage=round((as_of - entered).total_seconds() / 86400, 1) if entered and entered <= as_of else None,
            readings=readings,
            estimate=estimate,
            current=current,
            open_follow_ups=int(tasks.get(deal_id, 0)),
            manual_fields=[str(f) for f in (deal.manual_fields or [])],
            sensitive=bool(account is not None and account.sensitive),
            texts=texts.get(deal_id, []),
            competitor_mentions=count,
            competitors_named=names,
            competitor_snippet=snippet,
            decision_makers_known=(sum(1 for t in history.dm_known if t <= as_of) if norms.has_decision_makers else None),
            size=sizes.get(deal_id),
            red_since=red_since,
            manager_review_at=manager_review_at,
            book=shared,
        ))
    return contexts + review


__all__ = ["REVIEW_ID", "PreparedPipeline", "build", "build_review", "competitor_matcher", "deal_texts", "estimate_for",
           "load_book", "prepare", "prior_flag", "recent_patterns", "subjects"]
