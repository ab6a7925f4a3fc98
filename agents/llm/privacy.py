"""What the store-side privacy screen (crm_core/contexts/privacy.py) tells `reason()` about a context.

Privacy is a property of the context, not of its subject: a deal's context carries the emails and
notes of the people on it, a meeting's context its attendees, a duplicate hint another contact's
name. The screen lists every sensitive record a context carries (`withheld`) and every one it
left out of the context (`redacted`); `reason()` keeps a context with any `withheld` record off
remote models (the local model, else the offline reasoner) and writes both lists into the
decision's notes, so the audit log says which records were withheld and why.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

RecordKind = Literal["contact", "account", "deal", "meeting", "email"]


class WithheldRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: RecordKind
    record_id: int | None = None
    label: str
    why: str  # a plain sentence: "marked sensitive", "its account is marked sensitive", ...

    def sentence(self) -> str:
        return f"{self.kind} {self.label} ({self.why})"


class PrivacyScreen(BaseModel):
    model_config = ConfigDict(frozen=True)

    withheld: tuple[WithheldRecord, ...] = ()   # sensitive records the context carries: it stays local
    redacted: tuple[WithheldRecord, ...] = ()   # sensitive records taken out of the context before reasoning

    @property
    def keep_local(self) -> bool:
        return bool(self.withheld)

    def notes(self, remote: bool) -> list[str]:
        out = []
        if self.withheld:
            listed = "; ".join(r.sentence() for r in self.withheld[:10])
            more = f"; and {len(self.withheld) - 10} more" if len(self.withheld) > 10 else ""
            out.append(f"kept off the remote model because the context carries sensitive records: {listed}{more}"
                       if remote else f"context carries sensitive records (reasoned on this machine): {listed}{more}")
        if self.redacted:
            listed = "; ".join(r.sentence() for r in self.redacted[:10])
            more = f"; and {len(self.redacted) - 10} more" if len(self.redacted) > 10 else ""
            out.append(f"left out of what the model saw: {listed}{more}")
        return out


CLEAR = PrivacyScreen()

__all__ = ["CLEAR", "PrivacyScreen", "RecordKind", "WithheldRecord"]
