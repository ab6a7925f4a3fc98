"""The HMAC scheme both directions use: timestamp inside the signed bytes, a replay window, rotation."""
from __future__ import annotations

import pytest

from crm_core.webhooks.signing import SignatureError, signature, signed_headers, verify

BODY = b'{"type":"page_view","email":"a@example.com"}'


def test_a_fresh_signature_verifies_and_any_change_breaks_it():
    headers = signed_headers("s3cret", BODY, timestamp=1_765_000_000)
    kwargs = {"timestamp": headers["X-CRM-Timestamp"], "provided": headers["X-CRM-Signature"], "tolerance_s": 300,
              "now": 1_765_000_100}
    verify("s3cret", body=BODY, **kwargs)
    for secret, body in (("other", BODY), ("s3cret", BODY + b" ")):
        with pytest.raises(SignatureError, match="does not match"):
            verify(secret, body=body, **kwargs)
    # The timestamp is signed: moving it forward to pass the window breaks the signature.
    with pytest.raises(SignatureError, match="does not match"):
        verify("s3cret", body=BODY, **{**kwargs, "timestamp": "1765000090"})


@pytest.mark.parametrize("now", [1_765_000_301, 1_764_999_699])
def test_outside_the_window_is_a_replay(now):
    sig = signature("s3cret", 1_765_000_000, BODY)
    with pytest.raises(SignatureError, match="replayed"):
        verify("s3cret", timestamp="1765000000", provided=sig, body=BODY, tolerance_s=300, now=now)


def test_missing_or_garbled_headers_and_rotation():
    with pytest.raises(SignatureError, match="needs the"):
        verify("s", timestamp=None, provided="v1=ab", body=BODY, tolerance_s=300)
    with pytest.raises(SignatureError, match="Unix seconds"):
        verify("s", timestamp="yesterday", provided="v1=ab", body=BODY, tolerance_s=300)
    old, new = signature("old", 100, BODY), signature("new", 100, BODY)
    verify("new", timestamp="100", provided=f"{old}, {new}", body=BODY, tolerance_s=300, now=100)
