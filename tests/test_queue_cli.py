"""`python -m crm_core queue ...` and `policy ...`: what scripts and tests drive, on the same services."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from auth_helpers import add_user
from crm_core import oversight
from crm_core.auth.sessions import sign_in_password
from crm_core.cli import main
from crm_core.db import unit_of_work
from crm_core.models import Contact, Decision, Task
from crm_core.settings import PROJECT_ROOT
from fakes.crm_records import envelope, seed


@pytest.fixture
def crm(store):
    with unit_of_work() as session:
        crm = seed(session)  # alice.rep and morgan.manager
        add_user(session, "sam", "manager")
        add_user(session, "admin", "admin")
        return crm


def queued(crm, actions=None, confidence=0.3) -> int:
    actions = actions or [("update_lead_score", {"contact_id": crm.ann, "score": 82, "tier": "hot", "next_action": "call"})]
    with unit_of_work() as session:
        [did] = oversight.submit(session, envelope("lead_scoring", actions, subject=("contact", crm.ann), confidence=confidence))
        return did


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_queue_list_shows_each_item_with_its_actions_and_why(crm, capsys):
    did = queued(crm)
    code, out, _ = cli(capsys, "queue", "list")
    assert code == 0
    assert f"#{did}  lead_scoring  contact {crm.ann}  confidence 0.30  low stakes  expires " in out
    assert f"- Set lead score of contact {crm.ann} to 82 (hot); next action: call" in out
    assert "why queued: action 0 (update_lead_score): confidence 0.30 is below the threshold 0.50 (low stakes)" in out
    code, out, _ = cli(capsys, "queue", "list", "--json")
    [item] = json.loads(out)
    assert item["id"] == did and item["actions"][0]["type"] == "update_lead_score"


def test_approve_executes_and_records_the_user_and_reason(crm, capsys):
    did = queued(crm)
    code, out, _ = cli(capsys, "queue", "approve", str(did), "--as", "morgan.manager", "--reason", "agreed on the call", "--json")
    assert code == 0
    result = json.loads(out)
    assert (result["status"], result["decided_by"], result["decision_note"]) == ("executed", "morgan.manager", "agreed on the call")
    with unit_of_work(readonly=True) as session:
        assert session.get(Contact, crm.ann).score == 82


def test_a_second_approve_exits_2_with_one_clear_line(crm, capsys):
    did = queued(crm)
    assert cli(capsys, "queue", "approve", str(did), "--as", "morgan.manager")[0] == 0
    code, _, err = cli(capsys, "queue", "approve", str(did), "--as", "sam")
    assert code == 2
    assert err.startswith(f"error: cannot approve decision {did}: it is executed (decided by morgan.manager at ")
    assert err.count("\n") == 1


def test_reject_and_revert(crm, capsys):
    rejected, approved = queued(crm), queued(crm)
    code, out, _ = cli(capsys, "queue", "reject", str(rejected), "--as", "morgan.manager", "--reason", "wrong person")
    assert (code, out.strip()) == (0, f"decision {rejected} rejected: now rejected")
    cli(capsys, "queue", "approve", str(approved), "--as", "morgan.manager")
    code, out, _ = cli(capsys, "queue", "revert", str(approved), "--as", "morgan.manager")
    assert (code, out.strip()) == (0, f"decision {approved} reverted: now reverted")
    with unit_of_work(readonly=True) as session:
        assert session.get(Decision, rejected).decision_note == "wrong person"
        assert session.get(Contact, crm.ann).score == 40


def test_a_failed_execution_or_revert_exits_1(crm, capsys):
    did = queued(crm, [("create_task", {"title": "Call", "deal_id": 9999})])
    code, out, _ = cli(capsys, "queue", "approve", str(did), "--as", "morgan.manager")
    assert code == 1 and f"decision {did} approved: now failed (action 0 (create_task): deal 9999 not found)" in out
    other = queued(crm, [("create_task", {"title": "Call", "contact_id": crm.ann})])
    cli(capsys, "queue", "approve", str(other), "--as", "morgan.manager")
    with unit_of_work() as session:
        session.scalars(select(Task)).one().status = "done"  # someone finished the task since
    code, out, _ = cli(capsys, "queue", "revert", str(other), "--as", "morgan.manager")
    assert code == 1 and "revert failed, nothing was undone" in out


def test_unknown_ids_exit_2(crm, capsys):
    code, _, err = cli(capsys, "queue", "approve", "999", "--as", "sam")
    assert (code, err) == (2, "error: decision 999 not found\n")


def test_policy_set_list_supervise_and_calibrate(crm, capsys):
    code, out, _ = cli(capsys, "policy", "set", "send_email", "--threshold", "0.8", "--always-ask", "--as", "admin")
    assert (code, out.strip()) == (0, "send_email: medium stakes, threshold 0.80, always ask: True")
    code, out, _ = cli(capsys, "policy", "supervise", "follow_up", "--decisions", "3", "--as", "admin")
    assert (code, out.strip()) == (0, "follow_up: supervised for 3 more decisions")
    code, out, _ = cli(capsys, "policy", "list", "--json")
    listed = json.loads(out)
    send_email = next(p for p in listed["policies"] if p["action_type"] == "send_email")
    assert send_email["always_ask"] is True and send_email["threshold"] == 0.8
    assert [s["agent"] for s in listed["supervised"]] == ["follow_up"]
    code, out, _ = cli(capsys, "policy", "calibrate", "--json")
    assert code == 0 and {r["action_type"] for r in json.loads(out)} >= {"send_email", "update_lead_score"}
    code, _, err = cli(capsys, "policy", "set", "send_email", "--threshold", "2", "--as", "admin")
    assert code == 2 and "threshold 2.0 must be between 0 and 1" in err
    code, _, err = cli(capsys, "policy", "supervise", "follow_up", "--until", "next tuesday", "--as", "admin")
    assert code == 2 and "is not an ISO time" in err


def test_queue_expire_from_the_command_line(crm, capsys):
    queued(crm)
    code, out, _ = cli(capsys, "queue", "expire")
    assert (code, out.strip()) == (0, "0 decisions expired")


@pytest.mark.slow  # two interpreters start and import the whole CLI
def test_two_cli_processes_approving_the_same_item_execute_it_once(crm):
    did = queued(crm)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "crm_core", "queue", "approve", str(did), "--as", user],
                              cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for user in ("morgan.manager", "sam")]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    [loser] = [err for code, _, err in results if code == 2]
    assert f"cannot approve decision {did}: it is executed" in loser
    with unit_of_work(readonly=True) as session:
        assert len(oversight.audit_entries(session, decision_id=did, event="action.executed")) == 1


def test_as_must_name_an_active_user_with_the_right(crm, capsys, monkeypatch):
    did = queued(crm, [("send_email", {"contact_id": crm.ann, "subject": "Hi", "body": "Hello Ann"})])
    code, _, err = cli(capsys, "queue", "approve", str(did), "--as", "Mallory (not a user)")
    assert code == 2 and "is not a user of this CRM" in err
    code, _, err = cli(capsys, "queue", "approve", str(did))
    assert code == 2 and "say who you are with --as NAME" in err
    # alice owns Ann, but the email is medium stakes: a manager's item.
    code, _, err = cli(capsys, "queue", "approve", str(did), "--as", "alice.rep")
    assert code == 2 and "decide_any" in err and "stakes are medium" in err
    code, _, err = cli(capsys, "policy", "set", "send_quote", "--threshold", "0", "--no-always-ask", "--as", "morgan.manager")
    assert code == 2 and "edit_policy" in err
    monkeypatch.setenv("CRM_USER", "sam")
    code, out, _ = cli(capsys, "queue", "approve", str(did), "--json")
    assert code == 0 and json.loads(out)["decided_by"] == "sam"
    with unit_of_work(readonly=True) as session:
        [entry] = oversight.audit_entries(session, decision_id=did, event="decision.approved")
    assert entry.actor == "sam (cli)" and entry.details["via"] == "cli"


def test_users_and_tokens_from_the_command_line(crm, capsys, monkeypatch):
    code, out, _ = cli(capsys, "users", "add", "Rita Rep", "--role", "rep", "--email", "rita@seller.example", "--as", "admin")
    assert code == 0 and "one-time password for Rita Rep: " in out
    code, _, err = cli(capsys, "users", "add", "Eve", "--role", "admin", "--as", "morgan.manager")
    assert code == 2 and "manage_users" in err
    code, out, _ = cli(capsys, "users", "token", "issue", "--name", "nightly export", "--as", "Rita Rep")
    assert code == 0
    raw = out.split(": ", 1)[1].split()[0]
    assert raw.startswith("crm_")
    monkeypatch.setenv("CRM_TOKEN", raw)
    did = queued(crm)
    code, _, err = cli(capsys, "queue", "approve", str(did))  # Rita owns nothing: refused, as Rita
    assert code == 2 and "Rita Rep (a rep)" in err and "decide_any" in err
    assert cli(capsys, "users", "deactivate", "Rita Rep", "--as", "admin")[0] == 0
    code, _, err = cli(capsys, "queue", "approve", str(did))
    assert code == 2 and "CRM_TOKEN is not a valid token" in err
    code, out, _ = cli(capsys, "users", "list", "--json")
    rita = next(u for u in json.loads(out) if u["name"] == "Rita Rep")
    assert rita["active"] is False and rita["has_password"] is True
    code, out, _ = cli(capsys, "users", "token", "list")
    assert "nightly export" in out and raw not in out


def test_first_start_prints_a_one_time_admin_password_once(store, capsys):
    code, out, _ = cli(capsys, "users", "ensure-admin")
    assert code == 0 and "created the admin user 'Admin' with the one-time password " in out
    one_time = out.split("one-time password ", 1)[1].split()[0]
    assert cli(capsys, "users", "ensure-admin") == (0, "", "")  # an admin exists: nothing to print
    with unit_of_work() as session:
        assert sign_in_password(session, "Admin", one_time).must_change_password
