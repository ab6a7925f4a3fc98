"""Lead-score services: the paged table, its filters, the trend since last week, the distribution, the history."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from auth_helpers import MANAGER
from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.errors import NotFound, UserError
from crm_core.models import Account, Contact, ScoreHistory, User
from crm_core.services import leads
from crm_core.services.leads import LeadFilters

NOW = datetime(2026, 11, 20, 12, 0)


@pytest.fixture(autouse=True)
def _frozen():
    with clock.frozen_at(NOW):
        yield


def _contact(session, first, *, score=None, tier=None, owner=None, source=None, stage="lead", company=None, history=()):
    """A contact and its score history: `history` is (days ago, score, reason) oldest first."""
    account = None
    if company:
        account = Account(name=company, name_key=company.lower())
        session.add(account)
        session.flush()
    contact = Contact(first_name=first, last_name="Test", email=f"{first.lower()}@example.com",
                      email_normalized=f"{first.lower()}@example.com", score=score, tier=tier, owner_id=owner, source=source,
                      lifecycle_stage=stage, account_id=account.id if account else None)
    session.add(contact)
    session.flush()
    for days_ago, value, reason in history:
        session.add(ScoreHistory(contact_id=contact.id, score=value, tier=tier or "cold", reason=reason,
                                 scored_at=NOW - timedelta(days=days_ago)))
    return contact


def test_table_sorts_by_score_with_unscored_last_and_pages(store):
    with unit_of_work() as s:
        _contact(s, "Low", score=10, tier="cold")
        _contact(s, "None")
        _contact(s, "High", score=90, tier="hot")
        _contact(s, "Mid", score=50, tier="warm")
    with unit_of_work(readonly=True) as s:
        first = leads.lead_table(s, LeadFilters(), limit=2, offset=0, actor=MANAGER)
        rest = leads.lead_table(s, LeadFilters(), limit=2, offset=2, actor=MANAGER)
    assert first.total == 4
    assert [r.name for r in first.rows] == ["High Test", "Mid Test"]
    assert [r.name for r in rest.rows] == ["Low Test", "None Test"]


def test_change_since_last_week_compares_with_the_newest_score_a_week_old(store):
    with unit_of_work() as s:
        _contact(s, "Up", score=80, tier="hot", history=[(20, 30, "old"), (9, 60, "week ago"), (1, 80, "pricing page")])
        _contact(s, "Down", score=40, tier="warm", history=[(8, 55, "week ago"), (2, 40, "went quiet")])
        _contact(s, "New", score=70, tier="warm", history=[(3, 70, "first")])
    with unit_of_work(readonly=True) as s:
        rows = {r.name: r for r in leads.lead_table(s, LeadFilters(), 10, 0, actor=MANAGER).rows}
    assert rows["Up Test"].change_7d == 20
    assert rows["Down Test"].change_7d == -15
    assert rows["New Test"].change_7d is None


def test_filters_by_tier_owner_source_range_search_and_outcome(store):
    with unit_of_work() as s:
        ann = User(name="Ann")
        s.add(ann)
        s.flush()
        _contact(s, "Hot", score=85, tier="hot", owner=ann.id, source="webinar", company="Acme Corp")
        _contact(s, "Warm", score=55, tier="warm", source="referral")
        _contact(s, "Cold", score=15, tier="cold", source="webinar")
        _contact(s, "Won", score=99, tier="hot", stage="customer")
        ann_id = ann.id

    def names(**kw):
        with unit_of_work(readonly=True) as s:
            return [r.name.split()[0] for r in leads.lead_table(s, LeadFilters(**kw), 10, 0, actor=MANAGER).rows]

    assert names() == ["Hot", "Warm", "Cold"]
    assert names(include_closed=True) == ["Won", "Hot", "Warm", "Cold"]
    assert names(tiers=("warm", "cold")) == ["Warm", "Cold"]
    assert names(owner_ids=(ann_id,)) == ["Hot"]
    assert names(sources=("webinar",)) == ["Hot", "Cold"]
    assert names(score_min=50, score_max=90) == ["Hot", "Warm"]
    assert names(search="acme") == ["Hot"]
    assert names(search="WARM@") == ["Warm"]


def test_score_range_upside_down_is_a_user_error():
    with pytest.raises(UserError, match="lowest score 80 is above the highest 20"):
        LeadFilters(score_min=80, score_max=20)


def test_distribution_counts_deciles_per_tier_and_puts_100_in_the_top_bucket(store):
    with unit_of_work() as s:
        _contact(s, "A", score=100, tier="hot")
        _contact(s, "B", score=95, tier="hot")
        _contact(s, "C", score=91, tier="warm")
        _contact(s, "D", score=5, tier="cold")
        _contact(s, "E")
    with unit_of_work(readonly=True) as s:
        dist = leads.score_distribution(s, LeadFilters(), actor=MANAGER)
    top = dist.buckets[-1]
    assert (top.low, top.high, top.contacts, top.by_tier) == (90, 100, 3, {"hot": 2, "warm": 1})
    assert dist.buckets[0].contacts == 1 and sum(b.contacts for b in dist.buckets) == 4
    assert dist.by_tier == {"hot": 2, "warm": 1, "cold": 1} and dist.unscored == 1


def test_filter_options_list_owners_and_sources(store):
    with unit_of_work() as s:
        s.add(User(name="Zed"))
        _contact(s, "A", source="webinar")
        _contact(s, "B", source="Referral")
    with unit_of_work(readonly=True) as s:
        options = leads.lead_filter_options(s)
    assert [name for _, name in options.owners] == ["Zed"]
    assert options.sources == ["Referral", "webinar"]


def test_history_runs_oldest_first_with_each_change_and_its_reason(store):
    with unit_of_work() as s:
        cid = _contact(s, "Up", score=80, tier="hot", history=[(20, 30, "first look"), (1, 80, "asked for pricing")]).id
    with unit_of_work(readonly=True) as s:
        history = leads.score_history(s, cid, actor=MANAGER)
    assert [(p.score, p.change, p.reason) for p in history.points] == [(30, None, "first look"), (80, 50, "asked for pricing")]
    assert history.name == "Up Test"
    with unit_of_work(readonly=True) as s, pytest.raises(NotFound, match="contact 424242 not found"):
        leads.score_history(s, 424242, actor=MANAGER)


def test_a_score_waiting_in_the_queue_shows_as_proposed_not_applied(store):
    from crm_core.models import Decision

    with unit_of_work() as s:
        waiting = _contact(s, "Wanda")
        applied = _contact(s, "Abe", score=40, tier="warm")
        s.add(Decision(agent="lead_scoring", subject_type="contact", subject_id=waiting.id, status="queued",
                       actions=[{"type": "update_lead_score", "params": {"contact_id": waiting.id, "score": 63, "tier": "hot"}},
                                {"type": "create_task", "params": {"title": "call"}}], created_at=NOW))
        s.add(Decision(agent="lead_scoring", subject_type="contact", subject_id=applied.id, status="executed",
                       actions=[{"type": "update_lead_score", "params": {"contact_id": applied.id, "score": 40}}], created_at=NOW))
    with unit_of_work(readonly=True) as s:
        rows = {r.name: r for r in leads.lead_table(s, LeadFilters(), actor=MANAGER).rows}
    assert (rows["Wanda Test"].score, rows["Wanda Test"].proposed_score, rows["Wanda Test"].proposed_tier) == (None, 63, "hot")
    assert (rows["Abe Test"].score, rows["Abe Test"].proposed_score) == (40, None)


def test_the_model_status_says_which_model_scores_and_why_the_prior_when_none_passed(store):
    from crm_core.models import ModelSnapshot

    with unit_of_work(readonly=True) as s:
        assert leads.scoring_model_status(s) is None
    with unit_of_work() as s:
        s.add(ModelSnapshot(agent="lead_scoring", trained_at=NOW - timedelta(days=1), data_hash="a", version=2,
                            metrics={"kind": "learned", "candidate_words": "logistic regression", "holdout_auc": 0.78,
                                     "holdout_auc_interval": [0.72, 0.84], "folds": ["a", "b", "c"], "contacts": 900}))
    with unit_of_work(readonly=True) as s:
        status = leads.scoring_model_status(s)
    assert status.learned and status.words == "logistic regression" and status.periods == 3 and status.auc_low == 0.72
    with unit_of_work() as s:
        s.add(ModelSnapshot(agent="lead_scoring", trained_at=NOW, data_hash="b", version=2,
                            metrics={"kind": "prior", "reason": "no model ranked this book's later leads clearly better than chance"}))
    with unit_of_work(readonly=True) as s:
        status = leads.scoring_model_status(s)
    assert not status.learned and "better than chance" in status.reason
