"""The combined-confidence formula: bounded, monotone in every input, never above the model's word."""
from __future__ import annotations

import itertools

import pytest

from agents.base import Usage
from agents.errors import ConfigError
from agents.llm import combine_confidence, cost_usd, price_for
from agents.llm.pricing import DEFAULT_PRICES, parse_price_table
from crm_core.errors import UserError
from crm_core.settings import get_settings

MODEL = [0.0, 0.3, 0.6, 0.9, 1.0]
COMPLETE = [0.0, 0.25, 0.5, 1.0]
AGREE = [False, None, True]  # in increasing order of evidence
APPROVALS = [(0, 20), (5, 20), (10, 20), (20, 20)]


def combined(m=0.8, c=1.0, a=True, r=(0, 0)) -> float:
    return combine_confidence(m, completeness=c, offline_agrees=a, approval_rate=r)[0]


def test_bounded_between_0_and_1_and_never_above_the_model_figure():
    for m, c, a, r in itertools.product(MODEL + [-0.5, 1.7], COMPLETE + [-1, 3], AGREE, APPROVALS + [None, (9, 3)]):
        value = combined(m, c, a, r)
        assert 0.0 <= value <= 1.0
        assert value <= max(0.0, min(1.0, m)) + 1e-12


@pytest.mark.parametrize("axis", ["model", "completeness", "agreement", "approvals"])
def test_monotone_in_each_factor(axis):
    for m, c, a, r in itertools.product(MODEL, COMPLETE, AGREE, APPROVALS):
        series = {
            "model": [combined(x, c, a, r) for x in MODEL],
            "completeness": [combined(m, x, a, r) for x in COMPLETE],
            "agreement": [combined(m, c, x, r) for x in AGREE],
            "approvals": [combined(m, c, a, x) for x in APPROVALS],
        }[axis]
        assert series == sorted(series), (axis, m, c, a, r, series)


def test_each_piece_of_evidence_strictly_lowers_a_nonzero_figure():
    best = combined(0.9, 1.0, True, (50, 50))
    assert combined(0.9, 0.5, True, (50, 50)) < best
    assert combined(0.9, 1.0, False, (50, 50)) < best
    assert combined(0.9, 1.0, True, (10, 50)) < best


def test_factors_explain_the_figure():
    value, factors = combine_confidence(0.9, completeness=0.5, offline_agrees=False, approval_rate=(10, 10))
    assert factors["model"] == 0.9 and factors["completeness"] == 0.5 and factors["offline_agrees"] is False
    assert factors["approved"] == 10 and factors["decided"] == 10
    product = factors["model"] * factors["completeness_factor"] * factors["agreement_factor"] * factors["approval_factor"]
    assert value == pytest.approx(product, abs=1e-3) and factors["combined"] == round(value, 4)


def test_approval_prior_numbers_in_the_docstring():
    f = lambda r: combine_confidence(1.0, completeness=1.0, offline_agrees=True, approval_rate=r)[1]["approval_factor"]  # noqa: E731
    assert f(None) == 0.8 and f((0, 0)) == 0.8
    assert f((10, 10)) == pytest.approx(0.9333, abs=1e-4)
    assert f((0, 10)) == pytest.approx(0.2667, abs=1e-4)


def test_cost_uses_the_price_table_and_env_overrides(monkeypatch):
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000, cache_write_tokens=1_000_000)
    monkeypatch.delenv("CRM_LLM_PRICES", raising=False)
    prices = get_settings().llm().prices
    assert cost_usd("claude-sonnet-5-5", usage, prices) == (3.0 + 15.0 + 0.3 + 3.75, True)
    assert price_for("my-model", prices) is None
    monkeypatch.setenv("CRM_LLM_PRICES", '{"my-model": {"input": 1, "output": 2, "cache_read": 0, "cache_write": 0}}')
    prices = get_settings().llm().prices  # the store reads the variable; the reasoning gets the table as a value
    assert cost_usd("my-model", usage, prices) == (3.0, True)
    assert price_for("claude-sonnet-5-5", prices) is not None


def test_unknown_model_is_charged_at_the_highest_known_price():
    usage = Usage(input_tokens=1_000_000)
    cost, known = cost_usd("claude-unknown-9", usage, DEFAULT_PRICES)
    assert not known and cost == 5.0  # opus input price, the dearest default


def test_bad_price_table_is_a_user_error(monkeypatch):
    monkeypatch.setenv("CRM_LLM_PRICES", '{"m": {"input": "cheap"}}')
    with pytest.raises(UserError, match="CRM_LLM_PRICES"):
        get_settings().llm()
    with pytest.raises(ConfigError, match="CRM_LLM_PRICES: not a valid price table"):
        parse_price_table("[1, 2]")
