"""Context builders: the store -> each agent's typed context. One module per agent.

Each module `crm_core.contexts.<agent>` defines:
    subjects(session, *, as_of) -> list[int]
        the subject ids a full run (`--all`) covers at `as_of`
    build(session, subject_ids, *, as_of) -> list[<Agent>.Context]
        the contexts for those ids, as the store stood at `as_of` (nothing after it is read)
"""
from __future__ import annotations

import importlib
from types import ModuleType


def builder(agent_name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{agent_name}")
