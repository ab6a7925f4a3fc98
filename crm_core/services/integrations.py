"""What the Activity and audit page shows of the live integrations: outbound webhook deliveries and their subscriptions.

    webhook_deliveries(session, *, status=None, limit=100) -> list[DeliveryView]   newest first, with a one-line summary
    webhook_delivery_counts(session) -> dict[status, count]                         pending / delivered / failed
    webhook_subscriptions(session) -> list[SubscriptionView]
    webhook_sources(session) -> list[SourceView]

Read-only; changing sources and subscriptions is for admins (`python -m crm_core webhooks`, the API).
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from crm_core.webhooks import outbound, sources
from crm_core.webhooks.outbound import DeliveryView, SubscriptionView
from crm_core.webhooks.sources import SourceView


def webhook_deliveries(session: Session, *, status: str | None = None, limit: int = 100) -> list[DeliveryView]:
    return outbound.deliveries(session, status=status, limit=limit)


def webhook_delivery_counts(session: Session) -> dict[str, int]:
    return outbound.delivery_counts(session)


def webhook_subscriptions(session: Session) -> list[SubscriptionView]:
    return outbound.list_subscriptions(session)


def webhook_sources(session: Session) -> list[SourceView]:
    return sources.list_sources(session)
