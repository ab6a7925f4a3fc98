"""Errors a user can cause. The message names the thing and the place; callers show it as is.

`UserError` itself lives in `agents.errors` (the reasoning wing raises its `ConfigError` subclass
without importing the store); it is the same class here, so `except UserError` catches both.
"""
from __future__ import annotations

from agents.errors import ConfigError, UserError

__all__ = ["ConfigError", "InvalidTransition", "NotFound", "PermissionDenied", "UserError"]


class NotFound(UserError):
    pass


class InvalidTransition(UserError):
    """A queue item is not in a state that allows what was asked (e.g. approving a rejected item)."""


class PermissionDenied(UserError):
    """The actor lacks a right. The message names the actor, what was asked and the missing right."""

    def __init__(self, message: str, *, right: str) -> None:
        super().__init__(message)
        self.right = right
