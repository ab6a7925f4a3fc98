"""Agent name -> agent instance. Each agent module exposes `AGENT`."""
from __future__ import annotations

import importlib

from agents.base import AGENT_NAMES, Agent


def get_agent(name: str) -> Agent:
    if name not in AGENT_NAMES:
        raise KeyError(f"unknown agent {name!r}; one of: {', '.join(AGENT_NAMES)}")
    return importlib.import_module(f"agents.{name}").AGENT


def all_agents() -> list[Agent]:
    return [get_agent(n) for n in AGENT_NAMES]
