"""How pages talk to the store: cached reads, writes that clear the cache, and the flash message.

Reads go through `read(service_fn, ...)`: one read-only unit of work per call, cached by
`st.cache_data` under the store URL (AppTest and the tests switch stores inside one process)
for a short time, so the scheduler's writes show up without a click. Every write through
`write(...)` clears all cached reads, so the person who clicked never sees the state from
before their own click.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import streamlit as st
from sqlalchemy.exc import OperationalError

from crm_core.db import unit_of_work
from crm_core.errors import UserError
from crm_core.settings import get_settings

READ_TTL_SECONDS = 30
_FLASH_KEY = "_crm_flash"
T = TypeVar("T")


def store_url() -> str:
    return get_settings().database_url


@st.cache_data(ttl=READ_TTL_SECONDS, show_spinner=False, max_entries=1000)
def _cached_read(module: str, name: str, url: str, args: tuple, kwargs: dict) -> Any:
    fn = getattr(importlib.import_module(module), name)
    with unit_of_work(url, readonly=True) as session:
        return fn(session, *args, **kwargs)


def read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a service `fn(session, *args, **kwargs)` in a read-only unit of work, cached."""
    return _cached_read(fn.__module__, fn.__qualname__, store_url(), args, kwargs)


def read_or_error(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """`read`, but a UserError (e.g. a record that does not exist) is shown, not raised."""
    try:
        return read(fn, *args, **kwargs)
    except UserError as exc:
        st.error(str(exc), icon="⚠️")
        return None


def read_fresh(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`read` without the cache: for results that hold live state (an import plan) or must be current."""
    with unit_of_work(store_url(), readonly=True) as session:
        return fn(session, *args, **kwargs)


def clear_cache() -> None:
    st.cache_data.clear()


def write(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call a service `fn(session, ...)` in one writing unit of work; commit, then clear cached reads.

    A UserError (bad input, an item someone else already decided) is flashed as an error and
    None is returned: the page shows the message, never a traceback.
    """
    try:
        with unit_of_work(store_url()) as session:
            result = fn(session, *args, **kwargs)
    except UserError as exc:
        flash("error", str(exc))
        return None
    except OperationalError as exc:
        flash("error", f"the store is busy or unreachable, nothing was saved; try again ({exc.orig})")
        return None
    finally:
        clear_cache()
    return result


def flash(kind: Literal["success", "error", "warning", "info"], message: str) -> None:
    """Keep a message for the next run of the page (a click usually reruns it at once)."""
    st.session_state.setdefault(_FLASH_KEY, []).append((kind, message))


def show_flash() -> None:
    for kind, message in st.session_state.pop(_FLASH_KEY, []):
        icon = {"success": "✅", "error": "⚠️", "warning": "⚠️", "info": "ℹ️"}[kind]
        getattr(st, kind)(message, icon=icon)
