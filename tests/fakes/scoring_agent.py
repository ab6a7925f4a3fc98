"""A small but complete agent for the reasoning-layer tests, independent of the real agents.

It scores one contact. Its actions come from code: the score update, a task for a senior rep,
and a nurture email whose recipient is the contact's address from the context: the model's
reply only picks among the three `next_action` values and gives a score.
"""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from agents.base import Proposal, ProposedAction, Prompt, UntrustedText
from agents.llm import fence

ALLOWED_ACTIONS = frozenset({"update_lead_score", "create_task", "send_email"})


class ScoringContext(BaseModel):
    contact_id: int
    name: str
    email: str
    page_views: int = 0
    sensitive: bool = False
    notes: list[UntrustedText] = []
    known_fields: int = 4
    expected_fields: int = 4


class ScoringDecision(BaseModel):
    score: int = Field(ge=0, le=100, description="likelihood to buy, 0-100")
    next_action: Literal["route_to_senior_rep", "add_to_nurture", "mark_low_priority"]
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str


class ScoringAgent:
    name: ClassVar[str] = "lead_scoring"
    tier: ClassVar[str] = "small"
    Context: ClassVar[type[BaseModel]] = ScoringContext
    Decision: ClassVar[type[BaseModel]] = ScoringDecision
    prompt: ClassVar[Prompt] = Prompt(version="test-scoring-1", system="You score B2B sales leads from CRM data.")

    def render(self, ctx: ScoringContext) -> str:
        notes = "\n".join(fence(n) for n in ctx.notes) or "(no notes)"
        return f"Contact #{ctx.contact_id} {ctx.name}; page views in 30 days: {ctx.page_views}.\nNotes:\n{notes}"

    def offline_decide(self, ctx: ScoringContext) -> ScoringDecision:
        score = min(100, 20 + 8 * ctx.page_views)
        action = "route_to_senior_rep" if score >= 70 else "add_to_nurture" if score >= 40 else "mark_low_priority"
        return ScoringDecision(score=score, next_action=action, confidence=0.7, reasoning=f"{ctx.page_views} page views")

    def proposals(self, ctx: ScoringContext, decision: ScoringDecision) -> list[Proposal]:
        actions = [ProposedAction(type="update_lead_score", params={"contact_id": ctx.contact_id, "score": decision.score})]
        if decision.next_action == "route_to_senior_rep":
            actions.append(ProposedAction(type="create_task", params={"contact_id": ctx.contact_id, "title": "Call this hot lead"}))
        elif decision.next_action == "add_to_nurture":
            actions.append(ProposedAction(type="send_email", params={"to": ctx.email, "template": "nurture-1"}))
        return [
            Proposal(
                subject_type="contact",
                subject_id=ctx.contact_id,
                subject_label=ctx.name,
                confidence=decision.confidence,
                reasoning=decision.reasoning,
                actions=tuple(actions),
                decision=decision.model_dump(mode="json"),
            )
        ]

    def is_sensitive(self, ctx: ScoringContext) -> bool:
        return ctx.sensitive

    def completeness(self, ctx: ScoringContext) -> float:
        return ctx.known_fields / ctx.expected_fields if ctx.expected_fields else 1.0


AGENT = ScoringAgent()


def good_reply(score: int = 82, next_action: str = "route_to_senior_rep", confidence: float = 0.9) -> dict:
    return {"score": score, "next_action": next_action, "confidence": confidence, "reasoning": "read pricing three times"}
