"""One agent run: store -> contexts -> reasoning -> oversight. The glue between the layers.

The agent itself never sees a session: the runner builds its contexts through
`crm_core.contexts.<agent>` in one read, hands each context to `agents.llm.reason`, and passes
each resulting envelope to `crm_core.oversight.submit` in its own unit of work, so one failed
subject never rolls back another's decision.

Every built context first goes through the privacy screen (`crm_core.contexts.privacy.screen`):
a context carrying any sensitive record, directly or through a linked deal, meeting, email or
mention, is reasoned on this machine, and the decision's notes say which records and why.

A `RunControl` bounds the run: a deadline after which no model is called (the remaining subjects
are decided by the offline reasoner, marked as such), and a stop request (SIGTERM/SIGINT in the
CLI, a worker shutting down) after which no new subject starts; a model call in flight is
abandoned, its subject recorded as interrupted, and the result says how far the run got.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import anthropic
from pydantic import BaseModel
from sqlalchemy import select

from agents.base import DecisionEnvelope
from agents.llm import anthropic_provider, batches, default_providers, reason
from agents.llm.fingerprint import fingerprint
from agents.llm.reply import ProviderFailure
from crm_core import clock, oversight
from crm_core.budget import spend_today
from crm_core.contexts import privacy
from crm_core.db import unit_of_work
from crm_core.models import Decision
from crm_core.settings import get_settings
from orchestration.registry import entry


class RunInterrupted(BaseException):
    """Raised inside a model call by a stop request; a BaseException so no `except Exception` eats it."""


class RunControl:
    """The bounds of one run: a deadline (monotonic seconds) and a stop request.

    `request_stop()` is safe to call from a signal handler: outside a model call it only sets the
    flag (checked before each subject); inside one it raises RunInterrupted at once, so a hanging
    endpoint cannot hold the process for the whole timeout. A second request while the first is
    still pending (a long context build, say) raises at once wherever the run is: every unit of
    work rolls back, so nothing half-written stays.
    """

    def __init__(self, *, deadline_s: float | None = None) -> None:
        self.deadline = time.monotonic() + deadline_s if deadline_s else None
        self.stop = threading.Event()
        self.stop_reason: str | None = None
        self._in_call = False

    def request_stop(self, reason: str) -> None:
        again = self.stop.is_set()
        self.stop_reason = self.stop_reason or reason
        self.stop.set()
        if (self._in_call or again) and threading.current_thread() is threading.main_thread():
            raise RunInterrupted(reason)

    @contextmanager
    def model_call(self) -> Iterator[None]:
        self._in_call = True
        try:
            yield
        finally:
            self._in_call = False


_AMBIENT: ContextVar[RunControl | None] = ContextVar("run_control", default=None)


@contextmanager
def job_control(control: RunControl) -> Iterator[RunControl]:
    """Runs started inside (a scheduler job's handler) obey `control` unless given their own."""
    token = _AMBIENT.set(control)
    try:
        yield control
    finally:
        _AMBIENT.reset(token)


class SubjectOutcome(BaseModel):
    subject_key: str
    decision_ids: list[int] = []
    skipped: str | None = None  # why no reasoning happened (unchanged context)
    reused_decision_id: int | None = None  # the last decision, still standing, when skipped
    failed: bool = False
    error: str | None = None
    provider: str | None = None
    not_reached: bool = False  # the run stopped before this subject
    withheld: int = 0          # sensitive records the context carried (kept off remote models)


class RunResult(BaseModel):
    agent: str
    as_of: datetime
    provider: str | None
    outcomes: list[SubjectOutcome] = []

    @property
    def decision_ids(self) -> list[int]:
        return [i for o in self.outcomes for i in o.decision_ids]

    stopped: str | None = None  # why the run ended early (a signal), None when it ran to the end

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.outcomes)

    @property
    def not_reached(self) -> int:
        return sum(o.not_reached for o in self.outcomes)

    def summary(self) -> str:
        """One line a person reads at a glance: how many subjects got what."""
        total = len(self.outcomes)
        reasoned = [o for o in self.outcomes if not o.skipped and not o.not_reached and not o.failed]
        by_provider: dict[str, int] = {}
        for o in reasoned:
            by_provider[o.provider or "?"] = by_provider.get(o.provider or "?", 0) + 1
        how = ", ".join(f"{n} by {p}" for p, n in sorted(by_provider.items()))
        parts = [f"{len(reasoned)} of {total} subject(s) decided" + (f" ({how})" if how else ""),
                 f"{len(self.decision_ids)} decision(s) stored", f"{self.failed} failed"]
        skipped = sum(1 for o in self.outcomes if o.skipped)
        if skipped:
            parts.append(f"{skipped} unchanged since the last decision")
        if self.not_reached:
            parts.append(f"{self.not_reached} not reached")
        head = f"{self.agent}: " + (f"stopped early ({self.stopped}): " if self.stopped else "")
        return head + ", ".join(parts)


def _subject_key(agent_name: str, ctx: BaseModel, index: int) -> str:
    for attr in ("contact_id", "deal_id", "meeting_id", "account_id", "subject_id"):
        value = getattr(ctx, attr, None)
        if value is not None:
            return f"{agent_name}:{attr.removesuffix('_id')}:{value}"
    return f"{agent_name}:batch:{index}"


def _reusable(session, agent_name: str, digest: str) -> Decision | None:
    """The subject's last decision when it was made on this same fingerprint, else None.

    The fingerprint covers the subject, so a hit names it; a later decision on the same subject
    with another fingerprint (the context moved and came back) means the hit is not the last one.
    """
    hit = session.scalars(
        select(Decision)
        .where(Decision.agent == agent_name, Decision.context_hash == digest, Decision.status != "failed")
        .order_by(Decision.id.desc())
        .limit(1)
    ).first()
    if hit is None:
        return None
    newer = session.scalar(
        select(Decision.id)
        .where(Decision.agent == agent_name, Decision.subject_type == hit.subject_type,
               Decision.subject_id == hit.subject_id, Decision.id > hit.id, Decision.status != "failed",
               Decision.context_hash != digest)
        .limit(1)
    )
    return None if newer is not None else hit


REUSE_REASON = "nothing it depends on changed since its last decision"


# Pairs one reuse row lists: a run over a very large book (50,000 leads) would otherwise write one
# row of about 700 KB, which every audit read then loads whole. Rows of this size stay a few KB.
REUSE_PAIRS_PER_ROW = 500


def _record_reuse(session, agent_name: str, reused: list[Decision], as_of: datetime) -> None:
    """Audit rows for the subjects of a run whose last decision stands: one row per REUSE_PAIRS_PER_ROW
    subjects, not one row per subject.

    Each row's details list its subjects with the decision that stands, by subject type:
    {"contact": [[subject_id, decision_id], ...]} (see `reused_in`), and say which part of the run
    it is ("part" of "parts"). A run about one subject (a scheduler job after an event) names that
    decision, so the record's own history shows it.
    """

    chunks = [reused[i:i + REUSE_PAIRS_PER_ROW] for i in range(0, len(reused), REUSE_PAIRS_PER_ROW)]
    for part, chunk in enumerate(chunks, start=1):
        by_type: dict[str, list[list[int]]] = {}
        for decision in chunk:
            by_type.setdefault(decision.subject_type, []).append([decision.subject_id, decision.id])
        paging = {"part": part, "parts": len(chunks)} if len(chunks) > 1 else {}
        oversight.record(session, "decision.reused", actor=f"agent:{agent_name}",
                         decision=chunk[0] if len(reused) == 1 else None,
                         reason=REUSE_REASON, count=len(chunk), reused=by_type, as_of=as_of, **paging)


def reused_in(details: dict[str, Any], subject_type: str, subject_id: int) -> int | None:
    """The decision a `decision.reused` row says still stands for this subject, else None."""
    for sid, decision_id in (details.get("reused") or {}).get(subject_type) or []:
        if sid == subject_id:
            return decision_id
    return None


def _decide_in_batch(
    todo: list[tuple[str, SubjectOutcome, BaseModel, Any, str]],
    decide: Callable[[BaseModel, Any, Callable[..., Any] | None], DecisionEnvelope],
    client_factory: Callable[..., Any] | None,
    control: RunControl,
) -> dict[str, DecisionEnvelope]:
    """Envelopes for the subjects a Message Batch answered (see agents.llm.batches), keyed by subject.

    Subjects decided without a model (offline route, spent budget, sensitive) come back from the
    capture pass as they are. A subject the batch did not answer is left out: the synchronous
    path then retries it or decides it offline, as for any single call.
    """
    settings = get_settings().llm()
    decided: dict[str, DecisionEnvelope] = {}
    requests: dict[str, dict[str, Any]] = {}
    ids: dict[str, tuple[str, BaseModel, Any]] = {}
    for n, (key, _outcome, ctx, screen, _digest) in enumerate(todo):
        try:
            decided[key] = decide(ctx, screen, lambda *_: batches.CaptureClient())
        except batches.Captured as captured:
            requests[f"s{n}"] = captured.params
            ids[f"s{n}"] = (key, ctx, screen)
    if not requests:
        return decided
    try:
        client = client_factory("anthropic", settings) if client_factory else anthropic_provider.build_client(settings)
        answered = batches.run_batch(client, requests, poll_s=settings.batch_poll_s, stop=control.stop,
                                     deadline=control.deadline)
    except (anthropic.APIError, ProviderFailure):
        return decided  # the batch could not be sent or read: every captured subject goes synchronous
    for custom_id, message in answered.items():
        key, ctx, screen = ids[custom_id]
        envelope = decide(ctx, screen, lambda *_, m=message: batches.ReplayClient(m))
        usage = envelope.usage.model_copy(update={"cost_usd": envelope.usage.cost_usd * batches.BATCH_PRICE_FACTOR})
        decided[key] = envelope.model_copy(update={"usage": usage, "notes": (*envelope.notes, batches.BATCH_NOTE)})
    return decided


def run_agent(
    agent_name: str,
    *,
    subject_ids: Sequence[int] | None = None,
    provider: str | None = None,
    as_of: datetime | None = None,
    idempotency_key: str | None = None,
    skip_unchanged: bool = False,
    client_factory: Callable[..., Any] | None = None,
    on_envelope: Callable[[DecisionEnvelope], None] | None = None,
    control: RunControl | None = None,
) -> RunResult:
    """Run `agent_name` over `subject_ids` (default: every subject due at `as_of`).

    `control`: the run's deadline and stop request (default: `CRM_LLM_RUN_DEADLINE_S`, no stop).
    """

    registered = entry(agent_name)
    agent, contexts_module = registered.agent, registered.contexts
    as_of = clock.to_naive_utc(as_of) if as_of else clock.now()

    # prepare() may store a freshly learned model, so it runs in a writing unit of work.
    with unit_of_work() as session:
        prepared = contexts_module.prepare(session, as_of=as_of)
    with unit_of_work(readonly=True) as session:
        ids = list(subject_ids) if subject_ids is not None else contexts_module.subjects(session, as_of=as_of)
        contexts = contexts_module.build(session, ids, as_of=as_of, prepared=prepared) if ids or subject_ids is None else []
        screened = privacy.screen(session, contexts, builder=contexts_module)
        approval_stats = oversight.approval_evidence(session, agent_name)
        budget_spent = spend_today(session, agent_name, at=as_of).exhausted

    control = control or _AMBIENT.get() or RunControl(deadline_s=get_settings().llm_run_deadline_s or None)
    result = RunResult(agent=agent_name, as_of=as_of, provider=provider)
    todo: list[tuple[str, SubjectOutcome, BaseModel, Any, str]] = []
    reused_here: list[Decision] = []
    for index, (ctx, screen) in enumerate(screened):
        key = _subject_key(agent_name, ctx, index)
        outcome = SubjectOutcome(subject_key=key, withheld=len(screen.withheld))
        result.outcomes.append(outcome)
        if control.stop.is_set():
            outcome.not_reached = True
            continue
        if callable(getattr(agent, "gather_outside", None)):
            ctx = agent.gather_outside(ctx)  # outside sources (an HTTP API) are asked here, never by a context builder
        digest = fingerprint(agent_name, ctx)
        if skip_unchanged:
            with unit_of_work(readonly=True) as session:
                reused = _reusable(session, agent_name, digest)
            if reused is not None:
                # No model call: the last decision stands (one audit row for the run says so, below).
                outcome.skipped = "context unchanged since the last decision"
                outcome.reused_decision_id = reused.id
                reused_here.append(reused)
                continue
        todo.append((key, outcome, ctx, screen, digest))
    if reused_here:
        with unit_of_work() as session:
            _record_reuse(session, agent_name, reused_here, as_of)

    llm = get_settings().llm()
    live = default_providers(llm, client_factory)

    def decide(ctx: BaseModel, screen: Any, anthropic_client: Callable[..., Any] | None = None) -> DecisionEnvelope:
        # The batch path swaps only the anthropic provider's client (capture, then replay); the others stay live.
        providers = live if anthropic_client is None else {
            **live, "anthropic": anthropic_provider.AnthropicProvider(llm, anthropic_client)}
        return reason(agent, ctx, provider=provider, settings=llm, providers=providers, approval_stats=approval_stats,
                      budget_exhausted=budget_spent, privacy=screen, deadline=control.deadline)

    batched: dict[str, DecisionEnvelope] = {}
    if provider != "offline" and len(todo) > llm.batch_above and not control.stop.is_set():
        batched = _decide_in_batch(todo, decide, client_factory, control)
    for key, outcome, ctx, screen, digest in todo:
        if control.stop.is_set():
            outcome.not_reached = True
            continue
        envelope = batched.get(key)
        if envelope is None:
            try:
                with control.model_call():
                    envelope = decide(ctx, screen)
            except RunInterrupted:
                outcome.failed = True
                outcome.error = f"interrupted ({control.stop_reason}) while waiting for the model; nothing was stored"
                continue
        if on_envelope:
            on_envelope(envelope)
        outcome.provider = envelope.provider
        outcome.failed = envelope.failed
        outcome.error = envelope.error
        # The same context reasoned twice (a retried job) must not be executed twice.
        ikey = f"{idempotency_key}:{key}" if idempotency_key else f"{key}:{digest[:16]}:{as_of.isoformat()}"
        with unit_of_work() as session:
            outcome.decision_ids = oversight.submit(session, envelope, idempotency_key=ikey)
    result.stopped = control.stop_reason if control.stop.is_set() else None
    return result
