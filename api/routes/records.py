"""Contacts, accounts and deals: upsert by external id, read with score, tier, risk and latest decisions, list by cursor.

A rep's token sees its own and unowned records; a manager's or admin's the whole team's (the services check it).
"""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Response

from api.deps import authenticated
from crm_core.auth.actor import Actor
from crm_core.db import unit_of_work
from crm_core.services import api_records as records
from crm_core.services.api_records import AccountIn, AccountOut, ContactIn, ContactOut, DealIn, DealOut, Page, Saved

router = APIRouter(prefix="/v1", tags=["records"])


def _saved(response: Response, saved: Saved) -> Saved:
    response.status_code = 201 if saved.created else 200
    return saved


@router.post("/contacts", response_model=Saved, status_code=201,
             summary="Create a contact, or update the one with this external id (else this email)")
def upsert_contact(body: ContactIn, response: Response, actor: Actor = Depends(authenticated)) -> Saved:
    with unit_of_work() as session:
        return _saved(response, records.upsert_contact(session, body, actor=actor))


@router.patch("/contacts/{contact_id}", response_model=Saved, summary="Update a contact; fields left out are kept")
def update_contact(contact_id: int, body: ContactIn, actor: Actor = Depends(authenticated)) -> Saved:
    with unit_of_work() as session:
        return records.upsert_contact(session, body, contact_id=contact_id, actor=actor)


@router.get("/contacts/{contact_id}", response_model=ContactOut, summary="A contact with its score, tier, open deals and latest decisions")
def get_contact(contact_id: int, actor: Actor = Depends(authenticated)) -> ContactOut:
    with unit_of_work(readonly=True) as session:
        return records.get_contact(session, contact_id, actor=actor)


@router.get("/contacts", response_model=Page, summary="Contacts by id, filtered; pass next_cursor back as cursor")
def list_contacts(actor: Actor = Depends(authenticated), cursor: str | None = None, limit: int = Query(50, ge=1, le=200),
                  tier: str | None = None, lifecycle_stage: str | None = None, owner: str | None = None,
                  min_score: int | None = Query(None, ge=0, le=100), updated_since: datetime | None = None,
                  email: str | None = None) -> Page:
    with unit_of_work(readonly=True) as session:
        return records.list_contacts(session, cursor=cursor, limit=limit, tier=tier, lifecycle_stage=lifecycle_stage, owner=owner,
                                     min_score=min_score, updated_since=updated_since, email=email, actor=actor)


@router.post("/accounts", response_model=Saved, status_code=201, summary="Create an account, or update the one with this external id (else domain)")
def upsert_account(body: AccountIn, response: Response, actor: Actor = Depends(authenticated)) -> Saved:
    with unit_of_work() as session:
        return _saved(response, records.upsert_account(session, body, actor=actor))


@router.patch("/accounts/{account_id}", response_model=Saved)
def update_account(account_id: int, body: AccountIn, actor: Actor = Depends(authenticated)) -> Saved:
    with unit_of_work() as session:
        return records.upsert_account(session, body, account_id=account_id, actor=actor)


@router.get("/accounts/{account_id}", response_model=AccountOut)
def get_account(account_id: int, actor: Actor = Depends(authenticated)) -> AccountOut:
    with unit_of_work(readonly=True) as session:
        return records.get_account(session, account_id, actor=actor)


@router.get("/accounts", response_model=Page)
def list_accounts(actor: Actor = Depends(authenticated), cursor: str | None = None, limit: int = Query(50, ge=1, le=200),
                  domain: str | None = None, owner: str | None = None, updated_since: datetime | None = None) -> Page:
    with unit_of_work(readonly=True) as session:
        return records.list_accounts(session, cursor=cursor, limit=limit, domain=domain, owner=owner,
                                     updated_since=updated_since, actor=actor)


@router.post("/deals", response_model=Saved, status_code=201, summary="Create a deal, or update the one with this external id")
def upsert_deal(body: DealIn, response: Response, actor: Actor = Depends(authenticated)) -> Saved:
    with unit_of_work() as session:
        return _saved(response, records.upsert_deal(session, body, actor=actor))


@router.patch("/deals/{deal_id}", response_model=Saved)
def update_deal(deal_id: int, body: DealIn, actor: Actor = Depends(authenticated)) -> Saved:
    with unit_of_work() as session:
        return records.upsert_deal(session, body, deal_id=deal_id, actor=actor)


@router.get("/deals/{deal_id}", response_model=DealOut, summary="A deal with its risk flag, reason and latest decisions")
def get_deal(deal_id: int, actor: Actor = Depends(authenticated)) -> DealOut:
    with unit_of_work(readonly=True) as session:
        return records.get_deal(session, deal_id, actor=actor)


@router.get("/deals", response_model=Page)
def list_deals(actor: Actor = Depends(authenticated), cursor: str | None = None, limit: int = Query(50, ge=1, le=200),
               status: str | None = None, stage: str | None = None, risk: str | None = None, owner: str | None = None,
               updated_since: datetime | None = None) -> Page:
    with unit_of_work(readonly=True) as session:
        return records.list_deals(session, cursor=cursor, limit=limit, status=status, stage=stage, risk=risk, owner=owner,
                                  updated_since=updated_since, actor=actor)
