"""Placeholder words and the audited placeholders L's learners and context builders read."""
from __future__ import annotations

from decimal import Decimal

import pytest

from crm_core.db import unit_of_work
from crm_core.models import QualityAudit, QualityFieldScore
from crm_core.quality.placeholders import audited_placeholders, is_missing, is_placeholder_text, value_text


@pytest.mark.parametrize("text", [
    "Select", "-- Select --", "--", "-", "?", "...", "N/A", "n/a", "#N/A", "none", "(none)", "NULL", "null",
    "unknown", "Unknown ", "desconhecido", "não informado", "Nao Informado", "Não se aplica", "desconocido",
    "inconnu", "unbekannt", "Not applicable", "TBD", "—", "#VALUE!", "Please choose", "sin dato",
])
def test_known_placeholders(text: str) -> None:
    assert is_placeholder_text(text)


@pytest.mark.parametrize("value", [
    "Acme", "VP Sales", "Brazil", "United States", "other", "0", "Nancy", "health_beauty", "", "  ", None, 0, 3.5,
])
def test_real_values_and_missing_are_not_placeholders(value: object) -> None:
    assert not is_placeholder_text(value)


def test_value_text_is_stable_for_numbers() -> None:
    assert value_text(Decimal("100.00")) == "100"
    assert value_text(0) == "0"
    assert value_text(Decimal("0.50")) == "0.5"
    assert value_text(" USA ") == "USA"


def test_audited_placeholders_reads_the_latest_audit(store: str) -> None:
    with unit_of_work() as session:
        assert audited_placeholders(session) == {}
        old = QualityAudit(trigger="manual", book_score=50.0, records=1, report={})
        session.add(old)
        session.flush()
        session.add(QualityFieldScore(audit_id=old.id, field_key="contacts.title", score=1, fill_rate=1,
                                      distinct_values=1, placeholders=["Old"]))
        new = QualityAudit(trigger="daily", book_score=60.0, records=1, report={})
        session.add(new)
        session.flush()
        session.add_all([
            QualityFieldScore(audit_id=new.id, field_key="contacts.attributes.origin", score=1, fill_rate=1,
                              distinct_values=2, placeholders=["Select", "0"]),
            QualityFieldScore(audit_id=new.id, field_key="contacts.source", score=1, fill_rate=1,
                              distinct_values=2, placeholders=[]),
        ])
    with unit_of_work() as session:
        audited = audited_placeholders(session)
    assert audited == {"contacts.attributes.origin": frozenset({"Select", "0"})}
    assert is_missing(0, "contacts.attributes.origin", audited)
    assert is_missing("--", "contacts.source", audited)
    assert not is_missing("Old", "contacts.title", audited)
    assert not is_missing("web", "contacts.source", audited)
