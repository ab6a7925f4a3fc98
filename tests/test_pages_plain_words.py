"""Every page in plain words, for a manager and for a rep, on a real day one.

The demo book after one pass of every agent (tests/day_one.py). Each page of the dashboard is opened,
with the views it offers (the queue's four views, every stage of the board with its cards, a red
deal's and a contact's detail, every tab and expander, the Data health page after an audit that
proposes fixes); no card, markdown, caption, metric, table cell, option or expander label may show a
raw record id, an internal action or agent name, or a prompt version.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from auth_helpers import sign_in
from day_one import day_one, day_one_template  # noqa: F401 - fixtures
from page_text import leaks, shown_text

from crm_core.auth.actor import Actor
from crm_core.db import unit_of_work
from crm_core.models import Deal, User, WorkerHeartbeat
from crm_core.services import queue_groups

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120
PAGES = sorted(p.stem for p in (ROOT / "pages").glob("*.py"))
QUEUE_VIEWS = ("By group", "One at a time", "List", "Decided")
pytestmark = pytest.mark.timeout(1200)  # the session's first day-one test seeds and runs every agent once


def checked(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def signed_in(name: str, page: str | None = None, **query: int) -> AppTest:
    """The dashboard as `name`: its landing page, or `page` (with query parameters, as a link opens it)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    sign_in(at, name)
    checked(at.run())
    if page is not None:
        at.switch_page(f"pages/{page}.py")
        at.query_params.update({k: str(v) for k, v in query.items()})
        checked(at.run())
    return at


def people() -> dict[str, str]:
    """The manager, and the rep who owns the most red deals (so their board and red list are not empty)."""
    with unit_of_work(readonly=True) as s:
        manager = s.scalars(select(User.name).where(User.role == "manager").order_by(User.name)).first()
        reds = s.execute(select(User.name, Deal.id).join(Deal, Deal.owner_id == User.id)
                         .where(User.role == "rep", Deal.status == "open", Deal.risk == "red")).all()
    counts: dict[str, int] = {}
    for name, _ in reds:
        counts[name] = counts.get(name, 0) + 1
    return {"manager": manager, "rep": max(counts, key=counts.get)}


def records_of(name: str) -> tuple[int, int]:
    """A red open deal `name` may open (their own for a rep) and its primary contact."""
    with unit_of_work(readonly=True) as s:
        user = s.scalar(select(User).where(User.name == name))
        q = select(Deal).where(Deal.status == "open", Deal.risk == "red", Deal.primary_contact_id.is_not(None))
        if user.role == "rep":
            q = q.where(Deal.owner_id == user.id)
        deal = s.scalars(q.order_by(Deal.amount.desc())).first()
        return deal.id, deal.primary_contact_id


def page_views(name: str, page: str) -> list[str]:
    """Everything `name` reads on `page`, over the views and detail it offers."""
    at = signed_in(name, page)
    texts = shown_text(at)
    if page == "approval_queue":
        for view in QUEUE_VIEWS:
            at.session_state["queue_tab"] = view  # only the open view is drawn
            texts += shown_text(checked(at.run()))
    elif page == "pipeline_health":
        control = at.button_group(key="pipeline_stage")
        for stage in control.options:
            control.set_value(stage)
            texts += shown_text(checked(at.run()))
            control = at.button_group(key="pipeline_stage")
    elif page == "record_detail":
        deal_id, contact_id = records_of(name)
        texts += shown_text(signed_in(name, page, deal=deal_id)) + shown_text(signed_in(name, page, contact=contact_id))
        at.text_input(key="detail_search").input("a")
        texts += shown_text(checked(at.run()))
    elif page == "data_health":
        at.button(key="health_propose").click()
        texts += shown_text(checked(at.run()))
    return texts


def later_that_day() -> None:
    """The manager approves the pipeline agent's proposals, so deals carry red and amber flags with their
    evidence; a scheduler worker is busy with an agent run, as the worker records it."""
    with unit_of_work() as s:
        user = s.scalars(select(User).where(User.role == "manager").order_by(User.name)).first()
        actor = Actor(user_id=user.id, name=user.name, role="manager", via="password")
        plan = queue_groups.plan(s, "approve", queue_groups.QueueFilter(agent="pipeline"))
        queue_groups.decide_many(s, plan.ids, verdict="approve", actor=actor)
        s.add(WorkerHeartbeat(worker_id="crm-host:4242:a1b2c3", hostname="crm-host", pid=4242, status="busy",
                              current_job="agent #12 lead_scoring"))


# What each page must show, so a clean result means the views were really drawn.
SHOWN = {"approval_queue": "Why it waits", "pipeline_health": "Full evidence", "record_detail": "Full evidence",
         "agents_settings": "Lead scoring agent run"}


@pytest.mark.parametrize("who", ["manager", "rep"])
def test_no_page_shows_a_raw_id_an_internal_name_or_a_prompt_version(day_one, who):
    later_that_day()
    name = people()[who]
    found = {"landing page": leaks(shown_text(signed_in(name)))}
    for page in PAGES:
        texts = page_views(name, page)
        assert page not in SHOWN or any(SHOWN[page] in t for t in texts), f"{page} does not show {SHOWN[page]!r}"
        found[page] = sorted(set(leaks(texts)))
    found = {page: texts for page, texts in found.items() if texts}
    assert not found, "\n".join(f"{page}: {texts[:8]}" for page, texts in found.items())
