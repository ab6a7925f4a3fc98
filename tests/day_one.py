"""A real day one for page tests: the demo book (scale 0.3) after one pass of every agent.

Seeded and run once per test session with the offline reasoner, as the first scheduler pass of
`make run` does; each test gets its own copy of the file. Test modules import the fixtures:
`from day_one import DayOne, day_one, day_one_template  # noqa: F401 - fixtures`.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agents.base import AGENT_NAMES
from crm_core.db import dispose_engines, migrate, unit_of_work
from crm_core.demo import seed_demo
from crm_core.models import Decision
from orchestration.runner import run_agent

# One template per session, even when several modules import the fixtures (each import makes its own fixture).
_TEMPLATE: dict[str, tuple[Path, int]] = {}


@dataclass
class DayOne:
    url: str
    queued: int


def _build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("day_one") / "crm.db"
    url = f"sqlite:///{path}"
    migrate(url)
    seed_demo(url=url, scale=0.3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRM_DATABASE_URL", url)
        mp.setenv("CRM_LLM_PROVIDER", "offline")
        mp.delenv("ANTHROPIC_API_KEY", raising=False)
        for agent in AGENT_NAMES:
            run_agent(agent, provider="offline")
    with unit_of_work(url, readonly=True) as s:
        queued = s.scalar(select(func.count()).select_from(Decision).where(Decision.status == "queued"))
    dispose_engines()
    return path, int(queued or 0)


@pytest.fixture(scope="module")
def day_one_template(tmp_path_factory) -> tuple[Path, int]:
    if "day_one" not in _TEMPLATE:
        _TEMPLATE["day_one"] = _build(tmp_path_factory)
    return _TEMPLATE["day_one"]


def use_copy_of(template: Path, tmp_path: Path, monkeypatch) -> str:
    """A test's own copy of a built store, made the configured one; returns its URL."""
    path = tmp_path / "crm.db"
    shutil.copyfile(template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    return url


@pytest.fixture
def day_one(day_one_template, tmp_path, monkeypatch) -> DayOne:
    template, queued = day_one_template
    url = use_copy_of(template, tmp_path, monkeypatch)
    yield DayOne(url=url, queued=queued)
    dispose_engines()
