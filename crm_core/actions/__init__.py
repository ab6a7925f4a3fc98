"""Action execution layer. Importing this package registers every action spec.

Each module below declares its action types; a new module is added here by name (a test checks
that every module declaring a spec is imported, and that the registry matches `ActionType`).
"""
from crm_core.actions import deals, emails, enrichment, lead_score, meetings, merge_contacts, normalise, notification, tasks
from crm_core.actions.base import REGISTRY, ActionContext, ActionParams, ActionSpec, ExecResult, get_spec, register

SPEC_MODULES = (deals, emails, enrichment, lead_score, meetings, merge_contacts, normalise, notification, tasks)

__all__ = ["REGISTRY", "SPEC_MODULES", "ActionContext", "ActionParams", "ActionSpec", "ExecResult", "get_spec", "register"]
