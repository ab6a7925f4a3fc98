"""What an audit reports: per field, what it found; for the book, a score and duplicate groups."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

FindingKind = Literal["placeholder", "variant", "outlier", "unit", "date", "duplicate"]
FieldKind = Literal["category", "text", "name", "identifier", "number", "date", "plan_date"]

# How many record ids a stored report keeps per finding (the full list lives only in memory,
# where the proposals are built from it).
STORED_IDS = 50


class Finding(BaseModel):
    kind: FindingKind
    field_key: str
    message: str                                  # one plain sentence a manager reads
    value: str | None = None                      # the offending value as text
    canonical: str | None = None                  # variant: the spelling to keep
    factor: float | None = None                   # unit: divide by this to get the right unit
    count: int = 0                                # records affected
    record_ids: list[int] = Field(default_factory=list)


class TopValue(BaseModel):
    value: str
    count: int


class FieldReport(BaseModel):
    field_key: str                # "contacts.title", "contacts.attributes.lead_type"
    label: str                    # "Contacts: title"
    kind: FieldKind
    records: int
    filled: int
    fill_rate: float
    distinct_values: int
    top_values: list[TopValue] = Field(default_factory=list)
    placeholders: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    score: float                  # 0-100
    counted_in_book: bool = True  # a field nobody ever filled does not pull the book down


class DuplicateGroup(BaseModel):
    field_key: str                # "contacts.email", "contacts.name_company", "accounts.name"
    key: str                      # what they share once case, punctuation and spaces are set aside
    record_ids: list[int]
    labels: list[str]


class AuditReport(BaseModel):
    audit_id: int | None = None
    ran_at: datetime
    trigger: str
    import_ref: str | None = None
    records: int
    book_score: float
    fields: list[FieldReport]
    duplicates: list[DuplicateGroup] = Field(default_factory=list)

    def field(self, key: str) -> FieldReport | None:
        return next((f for f in self.fields if f.field_key == key), None)

    def findings(self) -> list[Finding]:
        return [f for report in self.fields for f in report.findings]

    def worst_fields(self, n: int = 5) -> list[FieldReport]:
        scored = [f for f in self.fields if f.counted_in_book]
        return sorted(scored, key=lambda f: (f.score, f.field_key))[:n]

    def trimmed(self) -> AuditReport:
        """The report as stored: each finding keeps at most STORED_IDS record ids."""
        copy = self.model_copy(deep=True)
        for report in copy.fields:
            for finding in report.findings:
                finding.record_ids = finding.record_ids[:STORED_IDS]
        return copy


class TrendPoint(BaseModel):
    audit_id: int
    ran_at: datetime
    trigger: str
    book_score: float
