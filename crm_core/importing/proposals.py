"""Likely duplicates become merge proposals in the approval queue, one per pair, never merged here.

Each proposal is a queued `Decision` (agent 'import') holding one `merge_contacts` action, with
an audit entry; the oversight layer executes it through the action registry when a human
approves, and the action's revert undoes the merge.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from crm_core.importing.bulk import insert_rows
from crm_core.importing.contracts import DuplicateCandidate
from crm_core.importing.duplicates import merge_key
from crm_core.importing.refs import CHUNK
from crm_core.models import AuditEntry, Decision

AGENT = "import"
POLICY_REASON = "merging contacts is never automatic: a person confirms that the two are one"


def propose_merges(session: Session, candidates: list[DuplicateCandidate], row_ids: dict[int, int],
                   filename: str, actor: str, now: datetime) -> list[int]:
    """Store a queued merge proposal per candidate pair not proposed before; returns the Decision ids."""
    planned: dict[str, tuple[DuplicateCandidate, int, int, str, str]] = {}
    for cand in candidates:
        a = cand.contact_id if cand.contact_id is not None else row_ids.get(cand.row or -1)
        b = cand.other_contact_id if cand.other_contact_id is not None else row_ids.get(cand.other_row or -1)
        if a is None or b is None or a == b:
            continue
        # Keep the older record (the lower id): it carries the longer history.
        if a < b:
            planned.setdefault(merge_key(a, b), (cand, a, b, cand.label, cand.other_label))
        else:
            planned.setdefault(merge_key(a, b), (cand, b, a, cand.other_label, cand.label))
    if not planned:
        return []
    keys = list(planned)
    taken: set[str | None] = set()
    for start in range(0, len(keys), CHUNK):
        taken.update(session.scalars(select(Decision.idempotency_key)
                                     .where(Decision.idempotency_key.in_(keys[start:start + CHUNK]))))
    chosen = [(key, *planned[key]) for key in keys if key not in taken]
    if not chosen:
        return []
    decisions: list[dict[str, Any]] = []
    for key, cand, target, source, target_label, source_label in chosen:
        params = {"source_contact_id": source, "target_contact_id": target}
        reason = f"likely the same person: {cand.detail}"
        decisions.append({
            "agent": AGENT, "subject_type": "contact", "subject_id": target,
            "subject_label": f"Merge {source_label} (#{source}) into {target_label} (#{target})"[:300],
            "status": "queued", "idempotency_key": key, "confidence": cand.confidence,
            "confidence_factors": {"signals": cand.reasons}, "reasoning": reason,
            "decision": {"merge": params, "signals": cand.reasons, "detail": cand.detail, "file": filename,
                         "rows": [r for r in (cand.row, cand.other_row) if r is not None]},
            "actions": [{"type": "merge_contacts", "params": params, "reason": reason}],
            "context_snapshot": {}, "stakes": "medium", "reversible": True, "is_local": True,
            "policy_verdict": "queue", "policy_reason": POLICY_REASON, "created_at": now,
        })
    ids = insert_rows(session, Decision, decisions)
    audit = []
    for decision_id, (_, cand, target, source, _, _) in zip(ids, chosen, strict=True):
        cand.decision_id = decision_id
        audit.append({"at": now, "actor": actor, "event": "decision.created", "decision_id": decision_id,
                      "subject_type": "contact", "subject_id": target,
                      "details": {"agent": AGENT, "action": "merge_contacts", "source_contact_id": source,
                                  "target_contact_id": target, "file": filename, "reason": cand.detail}})
    session.execute(insert(AuditEntry), audit)
    return ids
