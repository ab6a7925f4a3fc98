"""HMAC-SHA256 signatures over timestamp + body, the same scheme both ways (inbound and outbound).

    X-CRM-Timestamp: 1765071234                      (Unix seconds)
    X-CRM-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

The timestamp is inside the signed bytes, so an old request cannot be replayed with a fresh
timestamp; a request older (or further in the future) than the tolerance is refused as a replay.
"""
from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-CRM-Timestamp"
SIGNATURE_HEADER = "X-CRM-Signature"
EVENT_HEADER = "X-CRM-Event"
EVENT_ID_HEADER = "X-CRM-Event-Id"
SCHEME = "v1"


class SignatureError(Exception):
    """Why a signed request was refused, in a sentence the sender can act on."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(secret, ts, body)}


def verify(secret: str, *, timestamp: str | None, provided: str | None, body: bytes,
           tolerance_s: int, now: float | None = None) -> None:
    """Raise SignatureError unless `provided` signs this body at a timestamp within the tolerance."""
    if not timestamp or not provided:
        raise SignatureError(f"the request needs the {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers")
    try:
        ts = int(timestamp.strip())
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds, got {timestamp[:40]!r}") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise SignatureError(f"the timestamp is {int(abs(current - ts))} s away from now (more than {tolerance_s} s): "
                             "a replayed or delayed request")
    expected = signature(secret, ts, body)
    # Several signatures may be sent during a secret rotation: "v1=abc, v1=def".
    candidates = [part.strip() for part in provided.split(",") if part.strip()]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("the signature does not match the body and timestamp for this source's secret")
