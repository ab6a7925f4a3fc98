"""A reply's own words, without the quoted history under it."""
from __future__ import annotations

import pytest

from crm_core.mailbox.poller import reply_text


@pytest.mark.parametrize("raw", [
    "Thursday works.\n\nOn Mon, 7 Dec 2026 at 09:15, Sam Rivera <sam@crm.test> wrote:\n> Hi Jane, here are the options.\n",
    "Thursday works.\n-----Original Message-----\nFrom: Sam\nHi Jane",
    "Thursday works.\n\nFrom: Sam Rivera <sam@crm.test>\nSent: Monday\nSubject: Pricing",
    "> Hi Jane, here are the options.\nThursday works.",
])
def test_quoted_history_is_cut(raw):
    assert reply_text(raw) == "Thursday works."


def test_a_message_that_is_all_quote_is_kept_whole():
    assert reply_text("> only a quote") == "> only a quote"
    assert reply_text("Plain note, nothing quoted.\nSecond line.") == "Plain note, nothing quoted.\nSecond line."
