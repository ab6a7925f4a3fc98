"""Who may do what: the rights table, and each role refused what it may not do, in the services.

Service-level tests run on SQLite and PostgreSQL (the `store` fixture). A rep approves low-stakes
items on records they own and nothing else; a manager anything up to critical; policy, agent
settings and users are an admin's; agents and the scheduler never decide a queued item.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from auth_helpers import actor_of, add_user
from crm_core import oversight
from crm_core.auth import Actor
from crm_core.auth.rights import RIGHTS, ROLES, authorize_record, critical_reasons, has_right, rights_of, visible_owner
from crm_core.db import unit_of_work
from crm_core.errors import PermissionDenied, UserError
from crm_core.models import AuditEntry, Contact, Decision, User
from crm_core.services import approvals, oversight_settings, users
from fakes.crm_records import envelope, seed


# ---- the table -------------------------------------------------------------------------------------------

def test_each_role_has_exactly_its_rights():
    assert rights_of("rep") == {"decide_own_low", "own_tokens"}
    assert rights_of("manager") == {"decide_own_low", "decide_any", "decide_critical", "view_all", "act_on_any", "own_tokens",
                                    "import_data", "edit_exchange_rates"}
    assert rights_of("admin") == {r.name for r in RIGHTS}
    assert rights_of("system") == frozenset()
    assert all(r.description and r.roles <= set(ROLES) for r in RIGHTS)
    assert len({r.name for r in RIGHTS}) == len(RIGHTS)


def test_the_settings_page_table_matches_the_rights():
    rows = {r.right: r for r in oversight_settings.rights_table()}
    assert set(rows) == {r.name for r in RIGHTS}
    assert (rows["edit_policy"].rep, rows["edit_policy"].manager, rows["edit_policy"].admin) == (False, False, True)
    assert (rows["decide_critical"].rep, rows["decide_critical"].manager) == (False, True)


def test_critical_actions_are_named_whatever_the_policy_says():
    def d(*actions, stakes="low"):
        return Decision(id=1, stakes=stakes, actions=[{"type": t, "params": p} for t, p in actions])
    assert critical_reasons(d(("send_quote", {}))) == ["it would send quote"]
    assert critical_reasons(d(("merge_contacts", {}))) == ["it would merge contacts"]
    assert critical_reasons(d(("move_deal_stage", {"to_stage": "Closed Won"}))) == ["it would mark a deal won"]
    assert critical_reasons(d(("move_deal_stage", {"to_stage": "closed_lost"}))) == ["it would mark a deal lost"]
    assert critical_reasons(d(("move_deal_stage", {"to_stage": "Negotiation"}))) == []
    assert critical_reasons(d(("create_task", {}), stakes="critical")) == ["its stakes are critical"]
    rep = Actor(user_id=1, name="R", role="rep", via="password")
    assert has_right(rep, "decide_own_low") and not has_right(rep, "decide_any")
    assert visible_owner(rep) == 1 and visible_owner(Actor.system()) is None
    assert visible_owner(Actor(user_id=2, name="M", role="manager", via="oidc")) is None
    authorize_record(rep, 1, doing="snooze")
    authorize_record(Actor(user_id=2, name="M", role="manager", via="oidc"), 1, doing="snooze")
    with pytest.raises(PermissionDenied) as caught:
        authorize_record(rep, 2, doing="snooze the flag of Acme")
    assert caught.value.right == "act_on_any" and "someone else's record" in str(caught.value)
    with pytest.raises(KeyError):
        has_right(rep, "fly")


# ---- the services ------------------------------------------------------------------------------------------

@pytest.fixture
def team(store):
    with unit_of_work() as s:
        crm = seed(s)  # alice.rep owns Ann, Bob, Eve and the deal; morgan.manager owns nothing
        other = add_user(s, "Oscar Otherrep", "rep")
        admin = add_user(s, "Ada Admin", "admin")
        zed = Contact(first_name="Zed", last_name="Else", owner_id=other.id, attributes={}, manual_fields=[])
        s.add(zed)
        s.flush()
        alice, morgan = s.get(User, crm.rep), s.get(User, crm.manager)
        return {"crm": crm, "zed": zed.id, "rep": actor_of(alice), "other_rep": actor_of(other),
                "manager": actor_of(morgan), "admin": actor_of(admin)}


def queued(actions, subject, *, confidence=0.1) -> int:
    with unit_of_work() as s:
        [did] = oversight.submit(s, envelope("follow_up", actions, subject=subject, confidence=confidence))
        assert s.get(Decision, did).status == "queued"
        return did


def score(contact_id: int):
    return ("update_lead_score", {"contact_id": contact_id, "score": 70, "tier": "hot", "next_action": "call"})


def refused(fn, *args, **kwargs) -> PermissionDenied:
    with unit_of_work() as s, pytest.raises(PermissionDenied) as caught:
        fn(s, *args, **kwargs)
    return caught.value


def test_a_rep_decides_low_stakes_items_on_own_records_only(team):
    crm = team["crm"]
    own = queued([score(crm.ann)], ("contact", crm.ann))
    with unit_of_work() as s:
        assert oversight.approve(s, own, actor=team["rep"]).status == "executed"
    theirs = queued([score(team["zed"])], ("contact", team["zed"]))
    err = refused(oversight.approve, theirs, actor=team["rep"])
    assert err.right == "decide_any" and "someone else's record" in str(err) and "alice.rep (a rep)" in str(err)
    err = refused(oversight.reject, theirs, actor=team["rep"])
    assert err.right == "decide_any"
    email = queued([("send_email", {"contact_id": crm.ann, "subject": "Hi", "body": "Hello"})], ("contact", crm.ann))
    err = refused(oversight.approve, email, actor=team["rep"])
    assert err.right == "decide_any" and "stakes are medium" in str(err)
    with unit_of_work(readonly=True) as s:
        assert s.get(Decision, email).status == "queued" and s.get(Decision, theirs).status == "queued"
    with unit_of_work() as s:
        assert oversight.approve(s, email, actor=team["manager"]).status == "executed"


def test_critical_actions_need_a_manager_and_a_rep_cannot_revert_a_managers_item(team):
    crm = team["crm"]
    merge = queued([("merge_contacts", {"keep_id": crm.ann, "merge_id": crm.bob})], ("contact", crm.ann), confidence=1.0)
    won = queued([("move_deal_stage", {"deal_id": crm.deal, "to_stage": "Won"})], ("deal", crm.deal), confidence=1.0)
    for did in (merge, won):
        err = refused(oversight.approve, did, actor=team["rep"])
        assert err.right == "decide_critical", str(err)
    with unit_of_work() as s:
        assert oversight.approve(s, won, actor=team["manager"]).status == "executed"
    err = refused(oversight.revert, won, actor=team["rep"])
    assert err.right == "decide_critical"
    with unit_of_work() as s:
        assert oversight.revert(s, won, actor=team["admin"]).status == "reverted"


def test_a_rep_cannot_edit_a_low_item_into_a_critical_one(team):
    crm = team["crm"]
    did = queued([score(crm.ann)], ("contact", crm.ann))
    sneaky = [{"type": "move_deal_stage", "params": {"deal_id": crm.deal, "to_stage": "Lost"}}]
    err = refused(oversight.approve, did, actor=team["rep"], edited_actions=sneaky)
    assert err.right == "decide_critical"


def test_bulk_approve_skips_what_the_actor_may_not_decide_and_says_why(team):
    crm = team["crm"]
    mine = queued([score(crm.ann)], ("contact", crm.ann))
    theirs = queued([score(team["zed"])], ("contact", team["zed"]))
    with unit_of_work() as s:
        results = {r.id: r for r in approvals.bulk_approve_items(s, [mine, theirs], actor=team["rep"])}
    assert results[mine].ok and not results[theirs].ok and "decide_any" in results[theirs].error


def test_policy_agent_settings_and_users_are_an_admins(team):
    for who in ("rep", "manager"):
        err = refused(oversight.update_policy, "send_quote", actor=team[who], threshold=0.0, always_ask=False)
        assert err.right == "edit_policy"
        err = refused(oversight.set_supervised, "follow_up", actor=team[who], decisions=3)
        assert err.right == "agent_settings"
        err = refused(users.add_user, name="Mallory", role="admin", actor=team[who])
        assert err.right == "manage_users"
        err = refused(users.set_password, "alice.rep", actor=team[who], password="a long new password")
        assert err.right == "manage_users"
    with unit_of_work() as s:
        assert oversight.update_policy(s, "send_email", actor=team["admin"], threshold=0.8).threshold == 0.8
        users.set_role(s, "Oscar Otherrep", "manager", actor=team["admin"])
    with unit_of_work(readonly=True) as s:
        entries = {e.event: e for e in s.scalars(select(AuditEntry))}
    assert entries["policy.updated"].actor == "Ada Admin (password)"
    assert entries["policy.updated"].details["via"] == "password"
    assert entries["user.role_changed"].details["old"] == "rep"


def test_agents_and_the_scheduler_never_decide_a_queued_item(team):
    did = queued([score(team["crm"].ann)], ("contact", team["crm"].ann))
    err = refused(oversight.approve, did, actor=Actor.system())
    assert "a person must" in str(err)


def test_the_last_admin_cannot_be_deactivated_or_demoted(team):
    with unit_of_work() as s, pytest.raises(UserError, match="only active admin"):
        users.set_active(s, "Ada Admin", active=False, actor=team["admin"])
    with unit_of_work() as s, pytest.raises(UserError, match="only active admin"):
        users.set_role(s, "Ada Admin", "rep", actor=team["admin"])


def test_a_rep_sees_only_queued_items_about_own_records(team):
    crm = team["crm"]
    mine = queued([score(crm.ann)], ("contact", crm.ann))
    theirs = queued([score(team["zed"])], ("contact", team["zed"]))
    with unit_of_work(readonly=True) as s:
        rep_view = approvals.approval_queue(s, actor=team["rep"])
        manager_view = approvals.approval_queue(s, actor=team["manager"])
        other_view = approvals.approval_queue(s, actor=team["other_rep"], limit=1)
    assert [i.id for i in rep_view.items] == [mine] and rep_view.total == 1
    assert {i.id for i in manager_view.items} == {mine, theirs} and manager_view.total == 2
    assert [i.id for i in other_view.items] == [theirs] and other_view.total == 1
