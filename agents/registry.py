"""Agent name -> agent instance: the five agents, imported by name, so a missing one fails at import."""
from __future__ import annotations

from agents import enrichment, follow_up, lead_scoring, meeting, pipeline
from agents.base import AGENT_NAMES, Agent

AGENTS: dict[str, Agent] = {
    "lead_scoring": lead_scoring.AGENT,
    "follow_up": follow_up.AGENT,
    "enrichment": enrichment.AGENT,
    "pipeline": pipeline.AGENT,
    "meeting": meeting.AGENT,
}


def get_agent(name: str) -> Agent:
    agent = AGENTS.get(name)
    if agent is None:
        raise KeyError(f"unknown agent {name!r}; one of: {', '.join(AGENT_NAMES)}")
    return agent
