"""Errors a user can cause. The message names the thing and the place; callers show it as is."""
from __future__ import annotations


class UserError(Exception):
    """Bad input or a request that cannot be done; never a bug. Shown without a traceback."""


class NotFound(UserError):
    pass


class InvalidTransition(UserError):
    """A queue item is not in a state that allows what was asked (e.g. approving a rejected item)."""


class PermissionDenied(UserError):
    """The actor lacks a right. The message names the actor, what was asked and the missing right."""

    def __init__(self, message: str, *, right: str) -> None:
        super().__init__(message)
        self.right = right
