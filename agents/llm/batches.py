"""Bulk runs through the Message Batches API: half the per-token price, answered asynchronously.

A bulk run (more subjects than `CRM_LLM_BATCH_ABOVE`) reasons in three steps, each through the
same `agents.llm.reason` path as a single decision, so routing, the privacy screen, validation,
output checks and proposals are the same code:

1. capture: `reason()` runs with a client whose `messages.create` records the request instead of
   sending it (a subject routed offline, over budget or sensitive comes back decided, no call);
2. submit the recorded requests as one batch (several when they pass the API's limits on one),
   poll until they end, read the results (JSON Lines);
3. replay: `reason()` runs again with a client that returns the batch's message for that subject.

An item the batch did not answer (errored, expired, or the batch could not be read) is left to the
caller's synchronous path, which retries it or decides it offline as any single call would.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import anthropic

BATCH_PRICE_FACTOR = 0.5  # the Batches API bills input and output at half the standard price
BATCH_NOTE = "decided through the Message Batches API (half the per-token price)"


class Captured(BaseException):
    """Carries a request out of `reason()` unsent; a BaseException so no `except Exception` eats it."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__("request captured for a batch")
        self.params = params


class _CaptureMessages:
    def create(self, **params: Any) -> Any:
        raise Captured({k: v for k, v in params.items() if v is not None})


class CaptureClient:
    messages = _CaptureMessages()

    def with_options(self, **_: Any) -> CaptureClient:
        return self


class _ReplayMessages:
    def __init__(self, message: anthropic.types.Message) -> None:
        self._message = message

    def create(self, **_: Any) -> anthropic.types.Message:
        return self._message


class ReplayClient:
    """Answers the one request `reason()` makes with the message the batch returned for it."""

    def __init__(self, message: anthropic.types.Message) -> None:
        self.messages = _ReplayMessages(message)

    def with_options(self, **_: Any) -> ReplayClient:
        return self


# The API's limits on one batch: 100,000 requests and 256 MB of request body; kept under with room
# for the envelope around the items (a book block rides in every item, so a large book hits the size first).
MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 200 * 2**20


def split(requests: dict[str, dict[str, Any]], *, max_requests: int = MAX_BATCH_REQUESTS,
          max_bytes: int = MAX_BATCH_BYTES) -> list[dict[str, dict[str, Any]]]:
    """The requests in groups that each fit in one batch, in their order."""
    groups: list[dict[str, dict[str, Any]]] = [{}]
    size = 0
    for cid, params in requests.items():
        item = len(json.dumps({"custom_id": cid, "params": params}, default=str).encode())
        if groups[-1] and (len(groups[-1]) >= max_requests or size + item > max_bytes):
            groups.append({})
            size = 0
        groups[-1][cid] = params
        size += item
    return [g for g in groups if g]


def run_batch(
    client: anthropic.Anthropic,
    requests: dict[str, dict[str, Any]],
    *,
    poll_s: float,
    stop: threading.Event | None = None,
    deadline: float | None = None,
    max_requests: int = MAX_BATCH_REQUESTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> dict[str, anthropic.types.Message]:
    """Submit `requests` (custom_id -> Messages params), wait for the batches to end, return the answered ones.

    More requests than one batch may hold go as several batches, all submitted before the first
    poll. Returns only succeeded items; nothing from a batch that did not end before `deadline`
    (a monotonic time) or a stop request (it is then cancelled).
    """
    pending = [client.messages.batches.create(
        requests=[{"custom_id": cid, "params": params} for cid, params in group.items()])  # type: ignore[list-item]
        for group in split(requests, max_requests=max_requests, max_bytes=max_bytes)]
    ended = []
    while pending:
        still = [b for b in pending if b.processing_status != "ended"]
        ended += [b for b in pending if b.processing_status == "ended"]
        if not still:
            break
        if (stop is not None and stop.is_set()) or (deadline is not None and time.monotonic() + poll_s > deadline):
            for batch in still:
                try:
                    client.messages.batches.cancel(batch.id)
                except anthropic.APIError:
                    pass  # it ends on its own within 24 hours; nothing of it is used
            break
        (stop or threading.Event()).wait(poll_s)
        pending = [client.messages.batches.retrieve(b.id) for b in still]
    answered: dict[str, anthropic.types.Message] = {}
    for batch in ended:
        for item in client.messages.batches.results(batch.id):
            if item.result.type == "succeeded":
                answered[item.custom_id] = item.result.message
    return answered
