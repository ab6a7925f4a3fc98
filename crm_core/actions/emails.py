"""send_email and send_quote: email to the decision's own contact, never to an address from text.

The recipient is `params.contact_id`, checked against the decision's subject (its contact, or
its deal's contacts) and resolved to the address stored on the contact. Params cannot carry an
address at all (unknown fields are refused). A sent email cannot be unsent; one still held in
the outbox or scheduled for later is cancelled by revert.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import Field, field_validator
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import CrmAction, deal_of, recipient_problems, resolve_recipient
from crm_core.actions.mail import deliver, undeliver
from crm_core.errors import UserError
from crm_core.models import Deal, Decision
from crm_core.models.enums import Stakes

_NO_NEWLINES = r"^[^\r\n]*$"  # a header value with a newline could add headers (or recipients)


class SendEmailParams(ActionParams):
    contact_id: int
    subject: str = Field(min_length=1, max_length=300, pattern=_NO_NEWLINES)
    body: str = Field(min_length=1, max_length=20000)
    send_after: datetime | None = None  # later = scheduled; may still be cancelled until it goes

    @field_validator("send_after")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return clock.to_naive_utc(value) if value else None


@register
class SendEmail(CrmAction):
    type = "send_email"
    Params = SendEmailParams
    stakes = Stakes.MEDIUM  # it reaches a customer
    default_threshold = 0.9
    editable_fields = (("subject", False), ("body", True))
    reversible = False
    undo_note = "a sent email cannot be unsent; one still held in the outbox or scheduled for later is cancelled"

    def summary(self, params: SendEmailParams) -> str:
        when = f" at {params.send_after:%Y-%m-%d %H:%M} UTC" if params.send_after else ""
        return f"Email contact {params.contact_id}{when}: \u201c{params.subject}\u201d"

    def problems(self, session: Session, decision: Decision, params: SendEmailParams) -> list[str]:
        return recipient_problems(session, decision, params.contact_id)

    def execute(self, ctx: ActionContext, params: SendEmailParams) -> ExecResult:
        contact = resolve_recipient(ctx, params.contact_id)
        delivery = deliver(ctx, contact, subject=params.subject, body=params.body,
                           deal_id=deal_of(ctx.session, ctx.decision), send_after=params.send_after)
        return ExecResult(
            before_image={"created": {"emails": [delivery.email_id], "activities": [delivery.activity_id]}},
            result={"delivery": delivery.as_dict()},
        )

    def revert(self, ctx: ActionContext, params: SendEmailParams, done: ExecResult) -> str:
        return undeliver(ctx, done.result["delivery"])[1]


class QuoteLine(ActionParams):
    description: str = Field(min_length=1, max_length=300)
    quantity: Decimal = Field(gt=0)
    unit_price: Decimal = Field(ge=0)

    @property
    def total(self) -> Decimal:
        return self.quantity * self.unit_price


class SendQuoteParams(ActionParams):
    contact_id: int
    deal_id: int
    subject: str = Field(min_length=1, max_length=300, pattern=_NO_NEWLINES)
    body: str = Field(min_length=1, max_length=20000)
    lines: list[QuoteLine] = Field(min_length=1, max_length=100)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    valid_until: date | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))


def render_quote(params: SendQuoteParams, deal: Deal, number: str) -> str:
    rows = [f"Quote {number}", f"Deal: {deal.name}", ""]
    width = max(len(line.description) for line in params.lines)
    for line in params.lines:
        rows.append(f"{line.description:<{width}}  {line.quantity:>8} x {line.unit_price:>12,.2f} = {line.total:>14,.2f} {params.currency}")
    rows += ["", f"{'Total':<{width}}  {'':>8}   {'':>12}   {params.total:>14,.2f} {params.currency}"]
    if params.valid_until:
        rows.append(f"Valid until {params.valid_until:%Y-%m-%d}")
    return "\n".join(rows) + "\n"


@register
class SendQuote(CrmAction):
    type = "send_quote"
    Params = SendQuoteParams
    stakes = Stakes.CRITICAL  # money, sent to a customer
    default_threshold = 1.0
    always_ask = True
    editable_fields = (("subject", False), ("body", True))
    reversible = False
    undo_note = "a sent quote cannot be unsent; one still held in the outbox is withdrawn"

    def summary(self, params: SendQuoteParams) -> str:
        return (f"Send a quote of {params.total:,.2f} {params.currency} ({len(params.lines)} line"
                f"{'s' if len(params.lines) != 1 else ''}) for deal {params.deal_id} to contact {params.contact_id}")

    def problems(self, session: Session, decision: Decision, params: SendQuoteParams) -> list[str]:
        problems = recipient_problems(session, decision, params.contact_id)
        if session.get(Deal, params.deal_id) is None:
            problems.append(f"deal {params.deal_id} not found")
        elif deal_of(session, decision) not in (None, params.deal_id):
            problems.append(f"deal {params.deal_id} is not the deal this decision is about")
        return problems

    def execute(self, ctx: ActionContext, params: SendQuoteParams) -> ExecResult:
        problems = self.problems(ctx.session, ctx.decision, params)
        if problems:
            raise UserError(problems[0])
        contact = resolve_recipient(ctx, params.contact_id)
        deal = ctx.session.get(Deal, params.deal_id)
        number = f"Q-{deal.id}-{ctx.decision.id}"
        quote = render_quote(params, deal, number)
        delivery = deliver(ctx, contact, subject=params.subject, body=params.body, deal_id=deal.id,
                           attachments=[{"filename": f"{number}.txt", "content_type": "text/plain", "content": quote}])
        return ExecResult(
            before_image={"created": {"emails": [delivery.email_id], "activities": [delivery.activity_id]}},
            result={"delivery": delivery.as_dict(), "quote_number": number, "total": str(params.total), "currency": params.currency},
        )

    def revert(self, ctx: ActionContext, params: SendQuoteParams, done: ExecResult) -> str:
        return undeliver(ctx, done.result["delivery"])[1]
