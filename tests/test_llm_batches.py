"""The Message Batches client: requests past one batch's limits go as several, and every answer comes back."""
from __future__ import annotations

import json

import anthropic

from agents.llm import batches
from tests.fakes.anthropic_server import fake_anthropic, reply_json  # noqa: F401  (fake_anthropic is a fixture)


def _requests(n: int) -> dict[str, dict]:
    return {f"s{i}": {"model": "claude-haiku-5-5", "max_tokens": 100, "system": [{"type": "text", "text": "x" * 400}],
                      "messages": [{"role": "user", "content": f"contact {i}"}]} for i in range(n)}


def test_requests_past_one_batchs_size_go_as_several_batches_and_all_are_answered(fake_anthropic):
    fake_anthropic.always(reply_json({"ok": True}))
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=fake_anthropic.url, max_retries=0)
    requests = _requests(7)
    item = len(json.dumps({"custom_id": "s0", "params": requests["s0"]}).encode())  # all seven are this size
    answered = batches.run_batch(client, requests, poll_s=0.01, max_bytes=2 * item + 1)
    posts = [r for r in fake_anthropic.requests if r.path == "/v1/messages/batches" and r.method == "POST"]
    assert [len(p.body["requests"]) for p in posts] == [2, 2, 2, 1]
    sent = [i["custom_id"] for p in posts for i in p.body["requests"]]
    assert sorted(sent) == sorted(requests)  # each request in exactly one batch
    assert set(answered) == set(requests)


def test_split_keeps_order_and_the_request_limit():
    groups = batches.split(_requests(5), max_requests=2)
    assert [list(g) for g in groups] == [["s0", "s1"], ["s2", "s3"], ["s4"]]
    assert batches.split({}) == []
