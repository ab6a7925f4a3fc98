"""Plain words on queue cards and in the audit log: no internal names, no ids, numbers that agree."""
from __future__ import annotations

import re

import pytest

from agents.base import ACTION_TYPES, AGENT_NAMES
from crm_core.oversight import audit_words, wording
from crm_core.oversight.schemas import AuditView

NAMES = wording.Names(contacts={7: "Dana Smith (Acme)", 8: "Dana Smith (Acme)"}, deals={3: "Acme renewal"},
                      meetings={5: "Demo with Acme (07 Dec 14:00)"}, users={2: "Nina Patel"},
                      emails={7: "dana@acme.example", 8: "d.smith@acme.example"}, accounts={4: "Acme"})
PARAMS = {
    "update_lead_score": {"contact_id": 7, "score": 82, "tier": "hot", "next_action": "schedule_demo"},
    "create_task": {"title": "Call Dana", "contact_id": 7, "owner_id": 2, "due_at": "2026-12-08T17:00:00"},
    "send_email": {"contact_id": 7, "subject": "Checking in", "body": "Hi"},
    "post_notification": {"text": "Red deal", "title": "Acme"},
    "schedule_meeting": {"contact_id": 7, "title": "Next steps", "starts_at": "2026-12-09T15:00:00"},
    "move_deal_stage": {"deal_id": 3, "to_stage": "Proposal"},
    "set_deal_risk": {"deal_id": 3, "risk": "red"},
    "write_enrichment": {"entity": "contact", "entity_id": 7, "fields": {"country": {"value": "Spain", "source": "phone", "confidence": 0.9}}},
    "save_meeting_brief": {"meeting_id": 5, "brief": "Brief"},
    "create_action_items": {"meeting_id": 5, "items": [{"title": "Send deck"}]},
    "send_quote": {"contact_id": 7, "deal_id": 3, "subject": "Quote", "body": "Hi",
                   "lines": [{"description": "Seats", "quantity": 10, "unit_price": 100}]},
    "merge_contacts": {"source_contact_id": 8, "target_contact_id": 7},
    "normalise_values": {"entity": "contact", "field": "title", "kind": "placeholder", "changes": {"n/a": None},
                         "record_ids": [1, 2, 3]},
}
RAW = re.compile(r"\b(contact|deal|meeting|account|decision) \d+\b|#\d+|offline-v\d|[a-z]+_[a-z_]+")


@pytest.mark.parametrize("action_type", ACTION_TYPES)
def test_every_action_type_has_a_headline_with_names_and_no_internal_words(action_type):
    text = wording.headline(action_type, PARAMS[action_type], NAMES)
    assert not RAW.search(text), text
    assert wording.action_label(action_type) and not RAW.search(wording.action_label(action_type))
    if any(k in PARAMS[action_type] for k in ("contact_id", "entity_id", "target_contact_id")):
        assert "Dana Smith (Acme)" in text


def test_the_score_card_reads_as_a_sentence():
    assert wording.headline("update_lead_score", PARAMS["update_lead_score"], NAMES) == \
        "New score for Dana Smith (Acme): 82 (hot); next step: book a demo"
    assert "dana@acme.example" in wording.headline("merge_contacts", PARAMS["merge_contacts"], NAMES)


def test_a_record_that_is_gone_is_named_as_gone_not_by_id():
    text = wording.headline("update_lead_score", {"contact_id": 999, "score": 5, "tier": "cold"}, NAMES)
    assert "999" not in text and "no longer in the book" in text


@pytest.mark.parametrize("agent", AGENT_NAMES)
def test_agent_names_are_words(agent):
    assert not RAW.search(wording.agent_label(agent)) and "_" not in wording.agent_phrase(agent)


@pytest.mark.parametrize(("provider", "model", "local", "expected"), [
    ("offline", "offline-v1", True, "built-in reasoner"),
    ("anthropic", "claude-sonnet-5-5", False, "Claude Sonnet"),
    ("ollama", "llama3.1:8b", True, "local language model"),
])
def test_provider_line_names_no_prompt_or_model_versions(provider, model, local, expected):
    line = wording.provider_line(provider, model, local)
    assert expected in line and "v1" not in line and "5-5" not in line and "llama3" not in line


@pytest.mark.parametrize(("value", "threshold"), [
    (0.499, 0.50), (0.4999999, 0.5), (0.5, 0.5), (0.672, 0.70), (0.6999, 0.70), (0.7, 0.7), (0.70001, 0.70),
    (0.655, 0.655), (0.6549, 0.655), (0.0, 0.45), (0.99999, 1.0), (1.0, 1.0), (0.123456, 0.1234561),
])
def test_shown_numbers_never_contradict_the_comparison(value, threshold):
    shown_value, shown_threshold = wording.compared_percents(value, threshold)
    v, t = float(shown_value.rstrip("%")), float(shown_threshold.rstrip("%"))
    assert (v < t) == (value < threshold), (value, threshold, shown_value, shown_threshold)
    sentence = wording.confidence_sentence(value, threshold, "low")
    assert ("is below" in sentence) == (value < threshold)


def test_the_sentence_from_the_issue_cannot_appear():
    # The policy stored "0.50 is below the threshold 0.50" for 0.499; the card recomputes from the value.
    reasons = wording.why_waiting("queued: action 0 (update_lead_score): confidence 0.50 is below the threshold 0.50 (low stakes)",
                                  0.499, {"update_lead_score": 0.5})
    assert reasons == ["New lead score: confidence 49.9% is below the 50% this kind of action needs (low stakes)"]


def test_reasons_are_grouped_by_the_most_serious_one():
    merge = ("queued: action 0 (merge_contacts): policy always asks a human; action 0 (merge_contacts): two contacts become "
             "one: a person confirms they are the same; action 0 (merge_contacts): confidence 0.64 is below the threshold "
             "1.00 (high stakes)")
    assert wording.main_reason(merge) == "always_asks"
    escalated = ("queued: escalated by the agent: red deal for Maria: Against it: a; b; c.; action 0 (create_task): "
                 "confidence 0.55 is below the threshold 0.70 (low stakes)")
    assert wording.main_reason(escalated) == "escalated"
    assert len(wording.split_reasons(escalated)) == 2
    assert wording.main_reason("queued: action 0 (write_enrichment): would overwrite contact 3 field 'title' was set by a human") \
        == "overwrites_person"
    assert wording.main_reason("queued: action 0 (send_email): contact 12 not found") == "cannot_run"
    assert wording.main_reason(None) == "other"


def test_audit_details_say_what_changed_from_what_to_what():
    entry = AuditView(id=1, at="2026-12-07T10:00:00", actor="agent:lead_scoring", event="action.executed", decision_id=4,
                      subject_type="contact", subject_id=7, details={
                          "position": 0, "action_type": "update_lead_score", "params": PARAMS["update_lead_score"],
                          "before_image": {"contact": {"score": 40, "tier": "warm", "next_action": None, "updated_at": "x"}},
                          "result": {}})
    lines = audit_words.describe(entry, NAMES, None, None, {})
    assert lines[0].startswith("New score for Dana Smith (Acme)")
    assert "score: 40 → 82" in lines and "tier: “warm” → “hot”" in lines and "next step: — → “schedule demo”" in lines
    assert not any("{" in line for line in lines)
    assert audit_words.who("agent:follow_up") == "Follow-up agent" and audit_words.who("policy") == "Policy (automatic)"
    assert audit_words.who("Maria Alvarez (token)") == "Maria Alvarez (API token)"


def test_policy_change_reads_old_to_new():
    entry = AuditView(id=2, at="2026-12-07T10:00:00", actor="Maria Alvarez", event="policy.updated", decision_id=None,
                      subject_type=None, subject_id=None, details={"action_type": "create_task",
                                                                   "old": {"threshold": 0.7, "always_ask": False},
                                                                   "new": {"threshold": 0.8, "always_ask": False}})
    assert audit_words.describe(entry, NAMES, None, None, {}) == ["Task for the rep: threshold: 0.7 → 0.8"]


def test_what_cannot_be_undone_is_counted_in_words():
    assert wording.cannot_undo_sentence("send_email", 1) == "1 email will be sent: a sent email cannot be unsent"
    assert wording.cannot_undo_sentence("send_email", 44) == "44 emails will be sent: a sent email cannot be unsent"
    assert "cannot be unsent" in wording.cannot_undo_sentence("send_quote", 2)
