"""The contract every agent keeps, and the typed values that cross the layer boundaries.

An agent module defines a context model (built by `crm_core.contexts.<agent>` from the store),
a decision model (what a reasoner returns: the LLM's output schema, validated), a versioned
prompt, an offline policy, and `proposals()`, which turns a validated decision into proposals
whose actions come from the fixed list below. The model never names an action type, a
recipient or a record id that the agent code did not derive from the context: that is the
allow-list that keeps injected text from choosing what the CRM does.
"""
from __future__ import annotations

from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

# The fixed list of actions. crm_core.actions registers one executor per name.
ActionType = Literal[
    "update_lead_score",
    "create_task",
    "send_email",
    "post_notification",
    "schedule_meeting",
    "move_deal_stage",
    "set_deal_risk",
    "write_enrichment",
    "save_meeting_brief",
    "create_action_items",
    "send_quote",
    "merge_contacts",
    "normalise_values",
]
ACTION_TYPES: tuple[str, ...] = ActionType.__args__  # type: ignore[attr-defined]

AgentName = Literal["lead_scoring", "follow_up", "enrichment", "pipeline", "meeting"]
AGENT_NAMES: tuple[str, ...] = AgentName.__args__  # type: ignore[attr-defined]
# Proposers that reason without a model or a context builder (the data-quality audit) but submit
# through the same oversight intake, so their proposals are queued, audited and revertible alike.
ProposerName = Literal["data_quality"]
PROPOSER_NAMES: tuple[str, ...] = ProposerName.__args__  # type: ignore[attr-defined]
ModelTier = Literal["small", "mid", "large"]
SubjectType = Literal["contact", "deal", "meeting", "account", "pipeline", "field"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UntrustedText(Frozen):
    """Text that came from outside (emails, notes, transcripts, CSV cells): data, never instructions.

    Prompts render it only through `agents.llm.fence()`.
    """

    label: str
    text: str


class ProposedAction(Frozen):
    type: ActionType
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


class Proposal(Frozen):
    """What oversight receives: one subject, its actions, and why."""

    subject_type: SubjectType
    subject_id: int | None
    subject_label: str | None = None
    # Set by the agent: its own figure. After `agents.llm.reason`: the combined figure the policy
    # compares with thresholds, with the agent's figure and the factors kept beside it.
    confidence: float = Field(ge=0.0, le=1.0)
    model_confidence: float | None = None
    confidence_factors: dict[str, Any] = Field(default_factory=dict)
    reasoning: str
    actions: tuple[ProposedAction, ...] = ()
    escalation: str | None = None  # set when a human must look (red deal, missing information)
    decision: dict[str, Any] = Field(default_factory=dict)  # the typed decision (or its slice) as JSON


class Usage(Frozen):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0


class DecisionEnvelope(Frozen):
    """A reasoned decision with everything the audit log must keep about how it was made."""

    agent: AgentName | ProposerName
    proposals: tuple[Proposal, ...]
    decision: dict[str, Any] = Field(default_factory=dict)  # the whole validated decision, as JSON
    prompt_version: str
    provider: Literal["offline", "anthropic", "ollama"]
    model: str
    is_local: bool
    usage: Usage = Usage()
    latency_ms: int = 0
    context_snapshot: dict[str, Any] = Field(default_factory=dict)
    context_hash: str = ""
    failed: bool = False
    error: str | None = None
    notes: tuple[str, ...] = ()  # e.g. "daily budget spent: offline reasoner used"


class BookSection(Frozen):
    """One part of a book block: figures the CRM computed, or values copied from imported records."""

    title: str
    lines: tuple[str, ...] = ()
    imported: bool = False  # holds imported text (source names, industries, attribute values): fenced when sent


class BookBlock(Frozen):
    """What every decision of an agent on one book shares: the learned model's summary, the policy
    that applies, a few worked examples. Built once per run by `crm_core.contexts.book` and carried
    in the context (so the decision fingerprint covers it); the provider sends it in the cached
    system block, after the instructions, and the per-subject part in the user message.
    Examples hold no one's personal data: only non-personal fields of records not marked sensitive.
    """

    agent: str
    version: str            # the builder's version: bump it when what the block holds changes
    intro: str
    sections: tuple[BookSection, ...] = ()
    digest: str = ""        # sha256 of everything above (`BookBlock.make` sets it)

    @classmethod
    def make(cls, *, agent: str, version: str, intro: str, sections: tuple[BookSection, ...]) -> BookBlock:
        import hashlib
        import json

        body = {"agent": agent, "version": version, "intro": intro,
                "sections": [s.model_dump(mode="json") for s in sections]}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        return cls(agent=agent, version=version, intro=intro, sections=sections, digest=digest)

    @property
    def stamp(self) -> dict[str, str]:
        """What a decision stores of the block it was made with (the full text is rebuilt from the book)."""
        return {"version": self.version, "digest": self.digest}


class Prompt(Frozen):
    version: str  # stored with every decision; bump it whenever the text changes
    system: str


C = TypeVar("C", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)


class Agent(Protocol, Generic[C, D]):
    name: ClassVar[AgentName]
    tier: ClassVar[ModelTier]
    Context: ClassVar[type[BaseModel]]
    Decision: ClassVar[type[BaseModel]]
    prompt: ClassVar[Prompt]

    def render(self, ctx: C) -> str:
        """The user message: the context as data, untrusted text fenced."""

    def offline_decide(self, ctx: C) -> D:
        """The built-in reasoner: no model at all; learned knowledge travels inside the context."""

    def proposals(self, ctx: C, decision: D) -> list[Proposal]:
        """Turn a validated decision into proposals built only from allowed actions."""

    def is_sensitive(self, ctx: C) -> bool:
        """True when the context holds a record flagged sensitive: never sent to a remote model."""

    # Optional: `tier_for(ctx) -> ModelTier`, the tier one context needs when it differs from the
    # class tier (the pipeline's whole-pipeline review runs on the large tier, its deals on small).
    # `agents.llm.routing.tier_of(agent, ctx)` reads it.
    # Optional: `ScoreChecks` below, for an agent whose decision is a score with a tier cut from it.


@runtime_checkable
class ScoreChecks(Protocol):
    """Optional capability of an agent whose decision carries a `score` and a `tier` cut from it
    (lead scoring). `agents.llm.output_checks` reads it: a reply whose tier the cut-offs do not give
    its score is rejected, and a score far from the learned estimate goes to a person."""

    def score_estimate(self, ctx: Any) -> Any:
        """The learned (or prior) estimate behind the score; its `score` is what a reply moves from."""

    def score_tier(self, score: int, estimate: Any) -> str:
        """The tier the estimate's cut-offs give `score`."""


def context_hash(ctx: BaseModel) -> str:
    """sha256 of the context's canonical JSON: equal contexts, equal hashes, on any machine."""
    import hashlib
    import json

    canonical = json.dumps(ctx.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
