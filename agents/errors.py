"""Errors a person can cause and read: bad input, a bad setting, a request that cannot be done.

`UserError` is defined here, on the floor of the house, so the reasoning wing can raise one without
importing the store; `crm_core.errors` re-exports it, so every `except UserError` in the store, the
API, the dashboard and the CLIs also catches the `ConfigError`s raised under `agents/`.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input or a request that cannot be done; never a bug. Shown without a traceback."""


class ConfigError(UserError, ValueError):
    """A setting or argument the reasoning cannot work with: an unknown provider or model tier, a
    price table that does not parse. The message names the setting and what is wrong with it."""
