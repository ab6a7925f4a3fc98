"""post_notification: a message to the team's Slack-compatible webhook (or the outbox)."""
from __future__ import annotations

from pydantic import Field

from crm_core.actions.base import ActionContext, ActionParams, ExecResult, register
from crm_core.actions.common import CrmAction
from crm_core.actions.sinks import queue_notification, withdraw
from crm_core.models.enums import Stakes


class PostNotificationParams(ActionParams):
    text: str = Field(min_length=1, max_length=3000)
    title: str | None = Field(default=None, max_length=200, pattern=r"^[^\r\n]*$")


@register
class PostNotification(CrmAction):
    type = "post_notification"
    Params = PostNotificationParams
    stakes = Stakes.LOW  # it reaches the team, not a customer
    default_threshold = 0.7
    editable_fields = (("title", False), ("text", True))
    reversible = False
    undo_note = "a posted notification cannot be withdrawn; one still held in the outbox is cancelled"

    def summary(self, params: PostNotificationParams) -> str:
        head = f"{params.title}: " if params.title else ""
        return f"Notify the team: {head}{params.text[:160]}"

    def execute(self, ctx: ActionContext, params: PostNotificationParams) -> ExecResult:
        msg = queue_notification(ctx.session, ctx.sinks, decision_id=ctx.decision.id, text=params.text, title=params.title)
        return ExecResult(before_image={}, result={"outbox_id": msg.id, "sink": msg.sink, "status": msg.status})

    def revert(self, ctx: ActionContext, params: PostNotificationParams, done: ExecResult) -> str:
        cancelled, msg = withdraw(ctx.session, done.result["outbox_id"])
        if cancelled:
            return f"notification (outbox {done.result['outbox_id']}) had not been posted; cancelled"
        state = msg.status if msg else "missing"
        return f"notification (outbox {done.result['outbox_id']}) was {state}; a posted notification cannot be withdrawn, so nothing was undone"
