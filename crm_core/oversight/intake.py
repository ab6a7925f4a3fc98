"""submit: an agent's envelope becomes audited decisions, then policy routes each one.

One `Decision` row per proposal. The envelope's usage (tokens, cost) is split across its rows
so that summing decisions gives the true spend. A failed envelope is stored as failed decisions
and nothing runs. Otherwise policy decides: auto-approved decisions execute at once (as
"agent:<name>"), the rest are queued until `expires_at`.

Before policy, every proposal's free text (action parameters, reasoning, escalation) is screened
(`agents.llm.output_checks.screen_proposal`) against the context it was decided on: wording aimed
at a model, addresses or links the context does not hold, over-long text. Any finding, and any
`review_reasons` the reasoning step attached (a change larger than allowed), queues the decision
whatever its confidence, with the finding as its policy reason.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agents.base import AGENT_NAMES, DecisionEnvelope, Proposal
from agents.llm.output_checks import screen_proposal
from crm_core import clock
from crm_core.models import Decision
from crm_core.oversight.audit import record
from crm_core.oversight.execution import execute_decision
from crm_core.oversight.jsonable import jsonable
from crm_core.oversight.policy import evaluate, policy_map
from crm_core.oversight.supervised import consume
from crm_core.settings import get_settings

_SUBJECT_KEYS = (("contact_id", "contact"), ("deal_id", "deal"), ("meeting_id", "meeting"), ("account_id", "account"))
_MICRO = Decimal("0.000001")


def _existing(session: Session, keys: list[str]) -> list[int]:
    rows = session.execute(select(Decision.idempotency_key, Decision.id).where(Decision.idempotency_key.in_(keys))).all()
    by_key = dict(rows)
    return [by_key[k] for k in keys if k in by_key]


def _subject_from_snapshot(snapshot: dict[str, Any]) -> tuple[str, int | None]:
    for key, subject_type in _SUBJECT_KEYS:
        if isinstance(snapshot.get(key), int):
            return subject_type, snapshot[key]
    return "pipeline", None


def _split(total: int, n: int) -> list[int]:
    base, rest = divmod(total, n)
    return [base + (rest if i == 0 else 0) for i in range(n)]


def _split_cost(total: Decimal, n: int) -> list[Decimal]:
    share = (total / n).quantize(_MICRO, rounding=ROUND_DOWN)
    return [total - share * (n - 1)] + [share] * (n - 1)


def _confidence_details(proposal: Proposal | None, envelope: DecisionEnvelope) -> tuple[float | None, dict[str, Any]]:
    """The reasoner's own figure and the factors combined into `proposal.confidence`.

    Agents put them in the typed decision as `model_confidence` and `confidence_factors`.
    """
    for source in ((proposal.decision if proposal else {}), envelope.decision):
        factors = source.get("confidence_factors")
        model_conf = source.get("model_confidence")
        if factors is not None or model_conf is not None:
            return (float(model_conf) if isinstance(model_conf, int | float) else None,
                    factors if isinstance(factors, dict) else {})
    return None, {}


def held_reasons(decision: Decision, envelope: DecisionEnvelope, mail_from: str | None) -> list[str]:
    """Why this decision must wait for a person whatever its confidence; empty when nothing was found.

    Only the reasoning agents' text is screened: a rules proposer (the data-quality audit) writes
    values read from the store, not text a model could have been talked into.
    """
    marked = (decision.decision or {}).get("review_reasons") or []
    if envelope.agent not in AGENT_NAMES:
        return [str(r) for r in marked]
    found = screen_proposal(actions=decision.actions or [], reasoning=decision.reasoning, escalation=decision.escalation,
                            context=envelope.context_snapshot, extra_addresses=[mail_from] if mail_from else [])
    return list(dict.fromkeys([*(str(r) for r in marked), *found]))


def submit(
    session: Session,
    envelope: DecisionEnvelope,
    *,
    idempotency_key: str | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
) -> list[int]:
    """Store one Decision per proposal, audit it, apply policy; auto-approved ones execute now.

    `idempotency_key`: proposal i is stored under f"{key}:{i}"; a second submit with the same
    key returns the existing ids and executes nothing. `subject_type`/`subject_id` name the
    subject of an envelope without proposals (e.g. a failed one); by default it is read from
    the context snapshot (`contact_id`, `deal_id`, ...).
    """
    proposals: list[Proposal | None] = list(envelope.proposals) or [None]
    keys = [f"{idempotency_key}:{i}" for i in range(len(proposals))] if idempotency_key else None
    if keys:
        existing = _existing(session, keys)
        if existing:
            return existing
    settings = get_settings()
    now = clock.now()
    n = len(proposals)
    tokens = {name: _split(getattr(envelope.usage, name), n)
              for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")}
    costs = _split_cost(Decimal(str(envelope.usage.cost_usd)), n)
    fallback_subject = (subject_type, subject_id) if subject_type else _subject_from_snapshot(envelope.context_snapshot)

    decisions: list[Decision] = []
    try:
        # A concurrent submit with the same key inserts first: keep its rows, execute nothing.
        with session.begin_nested():
            for i, proposal in enumerate(proposals):
                model_conf, factors = _confidence_details(proposal, envelope)
                decisions.append(Decision(
                    agent=envelope.agent,
                    subject_type=proposal.subject_type if proposal else fallback_subject[0],
                    subject_id=proposal.subject_id if proposal else fallback_subject[1],
                    subject_label=proposal.subject_label if proposal else None,
                    status="proposed",
                    idempotency_key=keys[i] if keys else None,
                    confidence=proposal.confidence if proposal else None,
                    model_confidence=model_conf,
                    confidence_factors=jsonable(factors),
                    reasoning=proposal.reasoning if proposal else (envelope.error or None),
                    escalation=proposal.escalation if proposal else None,
                    decision=jsonable(proposal.decision if proposal and proposal.decision else envelope.decision),
                    actions=[a.model_dump(mode="json") for a in proposal.actions] if proposal else [],
                    context_snapshot=jsonable(envelope.context_snapshot),
                    context_hash=envelope.context_hash or None,
                    prompt_version=envelope.prompt_version,
                    provider=envelope.provider,
                    model=envelope.model,
                    is_local=envelope.is_local,
                    input_tokens=tokens["input_tokens"][i],
                    output_tokens=tokens["output_tokens"][i],
                    cache_read_tokens=tokens["cache_read_tokens"][i],
                    cache_write_tokens=tokens["cache_write_tokens"][i],
                    cost_usd=costs[i],
                    latency_ms=envelope.latency_ms,
                    created_at=now,
                ))
            session.add_all(decisions)
            session.flush()
    except IntegrityError:
        if keys:
            existing = _existing(session, keys)
            if existing:
                return existing
        raise

    policies = None if envelope.failed else policy_map(session)
    for i, decision in enumerate(decisions):
        record(
            session, "decision.created", actor=f"agent:{envelope.agent}", decision=decision,
            subject_label=decision.subject_label, proposal_index=i, proposals=n,
            context_snapshot=envelope.context_snapshot, context_hash=envelope.context_hash,
            prompt_version=envelope.prompt_version, provider=envelope.provider, model=envelope.model,
            is_local=envelope.is_local,
            tokens={"input": decision.input_tokens, "output": decision.output_tokens,
                    "cache_read": decision.cache_read_tokens, "cache_write": decision.cache_write_tokens},
            envelope_usage=envelope.usage, cost_usd=decision.cost_usd, latency_ms=envelope.latency_ms,
            confidence=decision.confidence, model_confidence=decision.model_confidence,
            confidence_factors=decision.confidence_factors, reasoning=decision.reasoning,
            escalation=decision.escalation, actions=decision.actions, typed_decision=decision.decision,
            notes=list(envelope.notes), failed=envelope.failed, error=envelope.error,
            idempotency_key=decision.idempotency_key,
        )
        if envelope.failed:
            decision.status = "failed"
            decision.error = envelope.error or "reasoning failed"
            session.flush()
            record(session, "decision.failed", actor=f"agent:{envelope.agent}", decision=decision,
                   error=decision.error, note="reasoning failed: nothing was executed")
            continue
        supervised_reason = consume(session, envelope.agent, settings)
        verdict = evaluate(session, decision, supervised_reason=supervised_reason, policies=policies)
        held = held_reasons(decision, envelope, settings.mail_from)
        auto = verdict.auto and not held
        decision.stakes = verdict.stakes
        decision.reversible = verdict.reversible
        decision.policy_verdict = "auto" if auto else "queue"
        decision.policy_reason = verdict.reason_text
        if held:
            # The findings lead: they are why this waits, whatever the confidence said.
            decision.policy_reason = "queued: " + "; ".join(held) + (
                "" if verdict.auto else "; " + "; ".join(verdict.reasons))
        details = {"verdict": decision.policy_verdict, "reason": decision.policy_reason, "reasons": verdict.reasons,
                   "passed": verdict.passed, "stakes": verdict.stakes, "reversible": verdict.reversible,
                   "supervised": supervised_reason, "held": held}
        if auto:
            decision.status = "auto_approved"
            decision.decided_at = now
            decision.decided_by = "policy"
            session.flush()
            record(session, "decision.auto_approved", actor="policy", decision=decision, **details)
            execute_decision(session, decision, actor=f"agent:{envelope.agent}", settings=settings)
        else:
            decision.status = "queued"
            decision.expires_at = now + timedelta(hours=settings.queue_expiry_hours)
            session.flush()
            record(session, "decision.queued", actor="policy", decision=decision, expires_at=decision.expires_at, **details)
    return [d.id for d in decisions]
