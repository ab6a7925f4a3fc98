"""The typed registry (orchestration.registry, agents.registry): every agent with its context builder,
decision model and action types, written out once; and the lead scorer's checks as methods."""
from __future__ import annotations

import inspect
from datetime import datetime

import pytest

from agents import lead_scoring as lead_scoring_agent
from agents.base import AGENT_NAMES, ScoreChecks
from agents.evals import load_cases
from agents.llm.output_checks import reply_problems
from agents.registry import AGENTS, get_agent
from orchestration.registry import REGISTRY, ContextBuilder, builder, entry


def test_the_registry_lists_the_five_agents_with_their_own_builders():
    assert tuple(REGISTRY) == AGENT_NAMES
    assert tuple(AGENTS) == AGENT_NAMES
    for name, registered in REGISTRY.items():
        assert registered.agent is get_agent(name) and registered.agent.name == name
        assert registered.contexts.__name__ == f"crm_core.contexts.{name}"
        assert isinstance(registered.contexts, ContextBuilder), f"{name}: its builder lacks prepare/subjects/build"
        assert registered.decision is registered.agent.Decision
        assert builder(name) is registered.contexts


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_every_builder_prepares_subjects_and_builds_with_the_runners_arguments(name):
    contexts = builder(name)
    as_of = datetime(2025, 1, 1)
    # The runner calls exactly these; a builder that needs more (or names them otherwise) fails here.
    inspect.signature(contexts.prepare).bind(object(), as_of=as_of)
    inspect.signature(contexts.subjects).bind(object(), as_of=as_of)
    inspect.signature(contexts.build).bind(object(), [1], as_of=as_of, prepared=None)


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_the_declared_action_types_are_the_ones_the_golden_cases_propose(name):
    registered = entry(name)
    proposed: set[str] = set()
    for case in load_cases(name):
        ctx = registered.agent.Context.model_validate(case["context"])
        decision = registered.agent.offline_decide(ctx)
        proposed |= {a.type for p in registered.agent.proposals(ctx, decision) for a in p.actions}
    assert proposed == registered.actions


def test_an_unknown_agent_is_refused_by_name():
    with pytest.raises(KeyError, match="unknown agent 'scoring'"):
        get_agent("scoring")
    with pytest.raises(KeyError, match="unknown agent 'scoring'"):
        entry("scoring")


def _lead_case():
    agent = get_agent("lead_scoring")
    case = load_cases("lead_scoring")[0]
    ctx = agent.Context.model_validate(case["context"])
    return agent, ctx, agent.offline_decide(ctx)


def test_the_lead_scorer_offers_its_score_checks_as_methods_and_the_others_do_not():
    assert [n for n, a in AGENTS.items() if isinstance(a, ScoreChecks)] == ["lead_scoring"]
    agent, ctx, decision = _lead_case()
    estimate = agent.score_estimate(ctx)
    assert estimate == lead_scoring_agent.estimate_of(ctx)
    assert agent.score_tier(decision.score, estimate) == decision.tier


def test_a_tier_the_score_does_not_give_is_a_contradiction_through_the_agents_methods():
    agent, ctx, decision = _lead_case()
    other = next(t for t in ("hot", "warm", "cold") if t != decision.tier)
    contradictions, _ = reply_problems(agent, ctx, decision.model_copy(update={"tier": other}))
    assert contradictions and f"tier {other}" in contradictions[0]
    assert reply_problems(agent, ctx, decision) == ([], [])

    class NoScoreChecks:  # the same reply from an agent without the capability is not checked for its tier
        pass

    assert reply_problems(NoScoreChecks(), ctx, decision.model_copy(update={"tier": other})) == ([], [])
