"""Action execution layer. Importing this package registers every action spec."""
import importlib
import pkgutil

from crm_core.actions.base import REGISTRY, ActionContext, ActionParams, ActionSpec, ExecResult, get_spec, register

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["REGISTRY", "ActionContext", "ActionParams", "ActionSpec", "ExecResult", "get_spec", "register"]
