"""Signed webhooks: inbound sources that post events, outbound subscriptions that hear decisions.

    signing          HMAC-SHA256 over "<timestamp>." + body; verify with a replay window
    sources          inbound sources (signed servers, the browser snippet): create, verify a request
    subscriptions    outbound subscriptions: create, list, deactivate
    outbound         audit log -> deliveries (one per subscription and event), delivery with backoff
"""
