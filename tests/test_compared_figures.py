"""Rounding never contradicts the comparison it reports: in the policy's reason, the card a manager
reads, the audit log and the agents' rates."""
from __future__ import annotations

import re

import pytest

from agents.base import ProposedAction
from auth_helpers import ADMIN
from crm_core import oversight
from agents.common.compared_figures import compared_decimals, percent_pair, shown_pair
from crm_core.db import unit_of_work
from crm_core.models import Decision
from crm_core.oversight import audit_words, views, wording
from fakes.crm_records import envelope, seed
from ui import format as fmt

PAIRS = [(0.6995, 0.70), (0.499, 0.50), (0.699, 0.70), (0.4999999, 0.5), (0.69999999, 0.70), (0.672, 0.70),
         (0.5, 0.5), (0.70001, 0.70), (0.6549, 0.655), (0.0, 0.45), (0.99999, 1.0), (0.91, 0.5)]


@pytest.mark.parametrize(("value", "threshold"), PAIRS)
def test_shown_decimals_order_as_the_true_ones(value, threshold):
    shown, limit = compared_decimals(value, threshold)
    assert (float(shown) < float(limit)) == (value < threshold), (shown, limit)
    assert len(limit.split(".")[1]) >= 2  # never fewer digits than the policy always showed


def test_the_fewest_digits_that_tell_the_two_apart():
    assert compared_decimals(0.699, 0.70) == ("0.699", "0.70")
    assert compared_decimals(0.6995, 0.70) == ("0.6995", "0.70")
    assert compared_decimals(0.499, 0.50) == ("0.499", "0.50")
    assert compared_decimals(0.72, 0.80) == ("0.72", "0.80")
    assert compared_decimals(0.70, 0.70) == ("0.70", "0.70")


@pytest.mark.parametrize(("a", "b"), [(0.324, 0.318), (0.318, 0.324), (0.3201, 0.32), (0.5, 0.5), (1.0, 0.32), (0.0, 0.32)])
def test_two_rates_are_equal_in_print_only_when_they_are_equal(a, b):
    x, y = (float(t.rstrip("%")) for t in percent_pair(a, b))
    assert (x > y, x == y, x < y) == (a > b, a == b, a < b)
    assert shown_pair(0.324, 0.318, scale=100) == ("32.4", "31.8")


def test_a_badge_never_rounds_a_confidence_up_to_a_threshold():
    assert fmt.confidence(0.499) == "49%" and fmt.confidence(0.6995) == "69%" and fmt.confidence(0.996) == "99%"
    assert fmt.confidence(0.5) == "50%" and fmt.confidence(0.29) == "29%" and fmt.confidence(None) == "—"


@pytest.fixture
def crm(store):
    with unit_of_work() as session:
        return seed(session)


def score_at(contact_id: int, confidence: float, threshold: float) -> int:
    """A new lead score at `confidence`, its action type's threshold set to `threshold`; its decision id."""
    score = ProposedAction(type="update_lead_score", reason="test",
                           params={"contact_id": contact_id, "score": 60, "tier": "warm", "next_action": "call"})
    with unit_of_work() as session:
        oversight.update_policy(session, "update_lead_score", actor=ADMIN, threshold=threshold)
        [did] = oversight.submit(session, envelope("lead_scoring", [score], subject=("contact", contact_id),
                                                   confidence=confidence))
    return did


BELOW = re.compile(r"confidence ([0-9.]+) is below the threshold ([0-9.]+)")


@pytest.mark.parametrize(("confidence", "threshold", "shown", "limit", "card"), [
    (0.6995, 0.70, "0.6995", "0.70", "confidence 69.95% is below the 70% this kind of action needs"),
    (0.499, 0.50, "0.499", "0.50", "confidence 49.9% is below the 50% this kind of action needs"),
])
def test_the_policy_reason_and_the_queue_card_agree_with_their_comparison(crm, confidence, threshold, shown, limit, card):
    did = score_at(crm.ann, confidence, threshold)
    with unit_of_work(readonly=True) as session:
        d = session.get(Decision, did)
        assert d.status == "queued"
        stored = BELOW.search(d.policy_reason)
        assert stored and stored.groups() == (shown, limit), d.policy_reason
        assert float(stored.group(1)) < float(stored.group(2))
        [item] = views.queue_items_by_id(session, [did])
    assert any(card in line for line in item.why), item.why
    # The stored reason read on its own (the audit log knows no current thresholds) says the same.
    assert any(card in line for line in wording.why_waiting(d.policy_reason, None, {}))


def test_a_decision_that_passes_is_logged_with_figures_that_pass(crm):
    did = score_at(crm.ann, 0.70004, 0.70)
    with unit_of_work(readonly=True) as session:
        d = session.get(Decision, did)
    assert d.status == "executed" and "update_lead_score confidence 0.70 >= 0.70" in d.policy_reason
    line = audit_words._passed("update_lead_score confidence 0.70 >= 0.70 (low stakes)")
    assert "meets the 70%" in line


def test_a_deal_reason_never_reads_32_percent_against_32_percent_overall():
    from agents.pipeline import SignalReading, reading_sentence, reason_sentence

    reading = SignalReading(signal="close_date", label="close date", band="in 30-60d", words="expected to close in 47 days",
                            band_loss_rate=0.324, band_support=120, weight=0.2)
    assert reason_sentence(reading, 0.318) == "expected to close in 47 days: such deals lost 32.4% vs 31.8% overall"
    assert "lost 32.4% of the time (n=120) vs 31.8% overall" in reading_sentence(reading, 0.318)
    clear = reading.model_copy(update={"band_loss_rate": 0.37})
    assert reason_sentence(clear, 0.318) == "expected to close in 47 days: such deals lost 37% vs 32% overall"


def test_a_weak_back_test_never_reads_as_meeting_the_skill_it_needs():
    from crm_core.oversight.starting_trust import _weak

    assert _weak(0.597) == "0.597, needs 0.60"
    assert _weak(0.55) == "0.55, needs 0.60"
    assert _weak(None) == "not measured, needs 0.60"
