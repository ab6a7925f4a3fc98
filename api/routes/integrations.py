"""Webhook sources and subscriptions (admins), and the delivery log."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import authenticated
from crm_core.auth.actor import Actor
from crm_core.db import unit_of_work
from crm_core.webhooks import outbound, sources
from crm_core.webhooks.outbound import DeliveryView, SubscriptionView
from crm_core.webhooks.sources import SourceView

router = APIRouter(prefix="/v1", tags=["webhooks"])


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="lower-case name used in the URL /v1/webhooks/<name>")
    kind: str = Field("signed", description="signed (a server with an HMAC secret) or browser (the website snippet)")


class SourceCreated(BaseModel):
    source: SourceView
    secret: str = Field(description="shown once: the HMAC secret, or a browser source's public site key")


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    events: list[str] = Field(description=", ".join(outbound.EVENT_TYPES))
    description: str | None = Field(None, max_length=500)


class SubscriptionCreated(BaseModel):
    subscription: SubscriptionView
    secret: str = Field(description="shown once: verify X-CRM-Signature with it")


@router.post("/webhook-sources", response_model=SourceCreated, status_code=201)
def add_source(body: SourceIn, actor: Actor = Depends(authenticated)) -> SourceCreated:
    with unit_of_work() as session:
        view, secret = sources.create_source(session, body.name, kind=body.kind, actor=actor)
    return SourceCreated(source=view, secret=secret)


@router.get("/webhook-sources", response_model=list[SourceView])
def list_sources(actor: Actor = Depends(authenticated)) -> list[SourceView]:
    sources.require_admin(actor, "see webhook sources")
    with unit_of_work(readonly=True) as session:
        return sources.list_sources(session)


@router.post("/subscriptions", response_model=SubscriptionCreated, status_code=201)
def subscribe(body: SubscriptionIn, actor: Actor = Depends(authenticated)) -> SubscriptionCreated:
    with unit_of_work() as session:
        view, secret = outbound.create_subscription(session, body.url, body.events, actor=actor, description=body.description)
    return SubscriptionCreated(subscription=view, secret=secret)


@router.get("/subscriptions", response_model=list[SubscriptionView])
def subscriptions(actor: Actor = Depends(authenticated)) -> list[SubscriptionView]:
    sources.require_admin(actor, "see webhook subscriptions")
    with unit_of_work(readonly=True) as session:
        return outbound.list_subscriptions(session)


@router.delete("/subscriptions/{subscription_id}", response_model=SubscriptionView)
def unsubscribe(subscription_id: int, actor: Actor = Depends(authenticated)) -> SubscriptionView:
    with unit_of_work() as session:
        return outbound.deactivate_subscription(session, subscription_id, actor=actor)


@router.get("/webhook-deliveries", response_model=list[DeliveryView])
def deliveries(actor: Actor = Depends(authenticated), status: str | None = None,
               limit: int = Query(100, ge=1, le=500)) -> list[DeliveryView]:
    sources.require_admin(actor, "see webhook deliveries")
    with unit_of_work(readonly=True) as session:
        return outbound.deliveries(session, status=status, limit=limit)
