"""A lead-score reason's words read the way its points go, compared with the typical lead when needed."""
from __future__ import annotations

import math

import numpy as np
import pytest

from agents.learning.explain import Contribution, agreeing_words, describe, with_points
from agents.learning.prior import prior_estimate
from agents.learning.vectorize import Vectorizer
from reason_words import direction

LIFT_2_2 = math.log(2.2)


# -- similar contacts' conversion lift ------------------------------------------------------------
def test_a_lift_that_lowered_the_score_is_compared_with_the_typical_leads_higher_one():
    words = agreeing_words("similar_source_lift_90d", LIFT_2_2, -0.4, typical=math.log(3.0))
    assert words == ("contacts with the same source converted 2.2x as often as others in the last 90 days (odds), "
                     "less than for a typical lead here")
    assert direction(words) == -1


def test_a_lift_above_the_typical_one_that_lowered_the_score_is_left_out():
    # The model learned "more is worse" here: no honest words put "2.2x as often" under "Lowered by".
    assert agreeing_words("similar_source_lift_90d", LIFT_2_2, -0.4, typical=-0.025) is None
    assert agreeing_words("similar_industry_lift_90d", -0.5, 0.3, typical=0.02) is None  # "1.6x less often" raising


def test_a_lift_whose_words_agree_with_its_sign_keeps_its_plain_words():
    assert agreeing_words("similar_source_lift_90d", LIFT_2_2, 0.4, typical=0.0) == describe("similar_source_lift_90d", LIFT_2_2)
    assert "1.6x less often than others" in agreeing_words("similar_industry_lift_90d", -0.5, -0.3, typical=0.02)


def test_a_lift_near_one_says_as_often_and_how_it_compares_when_that_explains_the_sign():
    words = agreeing_words("similar_source_lift_90d", 0.05, 0.2, typical=-0.03)
    assert words.startswith("contacts with the same source converted as often as others") and words.endswith(
        "more than for a typical lead here")
    # The other way round the comparison would contradict the sign: the neutral words stand alone.
    assert agreeing_words("similar_source_lift_90d", 0.05, -0.2, typical=-0.03) == describe("similar_source_lift_90d", 0.05)


def test_an_unknown_segment_names_no_feature():
    words = describe("similar_industry_lift_90d", None)
    assert "_" not in words and "lift" not in words and direction(words) == 0


# -- has a phone ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "effect"), [(0.0, 0.4), (1.0, -0.2), (False, 0.4), (True, -0.2)])
def test_a_phone_reason_against_its_words_is_left_out(value, effect):
    # "no phone number (+11)" or "has a phone number (-5)": a yes/no has no comparison that could explain it.
    assert agreeing_words("has_phone", value, effect, typical=0.65) is None
    assert agreeing_words("has_phone", value, effect) is None


def test_a_phone_reason_with_its_words_stays():
    assert agreeing_words("has_phone", 0.0, -0.3, typical=0.65) == "no phone number"
    assert agreeing_words("has_phone", 1.0, 0.3, typical=0.65) == "has a phone number"


# -- counts -----------------------------------------------------------------------------------------
def test_a_count_below_the_typical_lead_that_lowered_the_score_says_fewer():
    words = agreeing_words("page_views_30d", 1, -0.2, typical=1.8)
    assert words == "viewed 1 page in the last 30 days, fewer than a typical lead here"
    assert direction(words) == -1


def test_a_count_of_none_that_raised_the_score_is_left_out():
    # "has not read the pricing page (+3)": nothing is fewer than a typical lead's nothing-or-more.
    assert agreeing_words("pricing_views_30d", 0, 0.1, typical=0.2) is None
    assert agreeing_words("calls_30d", 3, -0.2, typical=0.14) is None  # more calls than typical, yet lower


def test_a_count_that_agrees_keeps_its_words_and_reps_emails_carry_no_direction():
    assert agreeing_words("pricing_views_today", 3, 0.9, typical=0.01) == "read the pricing page 3 times today"
    assert agreeing_words("pricing_views_30d", 0, -0.1, typical=0.2) == "has not read the pricing page in the last 30 days"
    # What reps sent is not what the lead did: either side reads true.
    assert agreeing_words("emails_sent_30d", 4, -0.3, typical=0.6) == "was sent 4 emails by reps in the last 30 days"


# -- recency-weighted engagement and days since the last activity ---------------------------------
def test_recent_engagement_below_the_typical_lead_that_lowered_the_score_says_less():
    words = agreeing_words("email_recent", 0.7, -0.3, typical=1.2)
    assert words == "recent email opens, clicks and replies (recency-weighted 0.7), less than a typical lead here"
    assert direction(words) == -1
    assert agreeing_words("email_recent", 0.7, -0.3, typical=0.1) is None  # above typical, yet lower
    assert agreeing_words("web_recent", 0.0, 0.2, typical=0.6) is None     # "no recent site visits (+)"


def test_a_tiny_recent_weight_never_reads_as_zero():
    assert describe("meeting_recent", 0.03) == "recent meetings (recency-weighted under 0.1)"


def test_days_since_the_last_activity_compare_with_the_typical_lead():
    assert agreeing_words("days_since_last_activity", 3.2, -0.1, typical=1.4) == (
        "was last active 3 days ago, longer ago than a typical lead here")
    assert agreeing_words("days_since_last_activity", 0.5, -0.1, typical=1.4) is None   # 12 hours ago, yet lower
    assert agreeing_words("days_since_last_activity", 12, 0.2, typical=1.4) is None     # silent 12 days, yet higher
    assert agreeing_words("days_since_last_activity", 45.2, -0.6) == "no activity for 45 days"
    assert describe("days_since_last_activity", 1.6) == "was last active 2 days ago"


# -- the typical lead and the whole path ------------------------------------------------------------
def test_the_typical_number_is_where_a_rows_column_sits_at_the_training_mean():
    rows = [{"views": v, "src": s} for v, s in [(0, "a"), (0, "a"), (1, "b"), (3, "b"), (12, "a"), (2, "b")]]
    vec = Vectorizer(min_count=1).fit(rows)
    x = vec.transform(rows).toarray()
    means = x.mean(axis=0)
    typical = vec.typical_numbers(means)
    assert set(typical) == {"views"}
    at_typical = vec.transform([{"views": typical["views"]}]).toarray()[0]
    col = [label for _, label in vec.columns].index("views")
    assert at_typical[col] == pytest.approx(means[col], abs=1e-9)
    assert 0 < typical["views"] < np.mean([0, 0, 1, 3, 12, 2])  # skewed counts: below the plain average


def test_with_points_drops_what_cannot_agree_and_keeps_the_rest_on_its_side():
    parts = [Contribution("has_phone", 0.0, 0.5), Contribution("page_views_30d", 1, -0.3),
             Contribution("source", "webinar", 0.2), Contribution("calls_30d", 3, -0.2)]
    out = {c.feature: c for c in with_points(parts, -1.0, {"has_phone": 0.65, "page_views_30d": 1.8, "calls_30d": 0.1})}
    assert set(out) == {"page_views_30d", "source"}
    assert out["page_views_30d"].points < 0 and out["page_views_30d"].words.endswith("fewer than a typical lead here")
    assert out["page_views_30d"].typical == 1.8
    assert out["source"].words == "source is webinar" and out["source"].points > 0


def test_the_priors_reasons_all_read_the_way_their_points_go():
    row = {"pricing_views_today": 2, "web_recent": 3.0, "email_replies_30d": 1, "seniority": "individual",
           "days_since_last_activity": 1.6, "email_kind": "free", "similar_source_lift_90d": -0.6,
           "similar_industry_lift_90d": 0.4}
    est = prior_estimate(row, 0.2)
    assert len(est.contributions) == 8
    for c in est.contributions:
        assert direction(c.words) in (0, 1 if c.points > 0 else -1), c


def test_imported_attribute_names_read_as_words():
    assert describe("account.tech_stack:salesforce", 1.0) == "account tech stack includes salesforce"
    assert describe("account.tech_stack:salesforce", None) == "account tech stack does not include salesforce"
    assert describe("attr.preferred_language", "nl") == "preferred language is nl"
    assert describe("account.revenue_currency", None) == "account revenue currency unknown"
    assert describe("source", "organic_search") == "source is organic search"
