"""Prompt caching: the shortest prefix the Messages API caches, per model family, and a token estimate.

The API caches the prompt up to the last block marked `cache_control` only when that prefix is at
least a model-dependent length; below it the request still succeeds, nothing is cached and both
cache counters in `usage` stay at zero. Documented minimums (Anthropic's prompt-caching page,
checked 2026-12): 1,024 tokens for the Sonnet and Opus 4.x models, 2,048 for Haiku 3/3.5, 4,096
for Haiku 4.5 and Opus 4.5/4.6. Names not listed get the conservative figure of their family.
"""
from __future__ import annotations

import math

MIN_CACHEABLE_TOKENS = {"haiku": 4096, "sonnet": 1024, "opus": 1024}
DEFAULT_MIN_CACHEABLE_TOKENS = 4096
CHARS_PER_TOKEN = 4.0  # a rough English/JSON average; the API's own count is what gets stored


def min_cacheable_tokens(model: str) -> int:
    name = model.lower()
    if "opus-4-5" in name or "opus-4-6" in name:
        return 4096
    for family, tokens in MIN_CACHEABLE_TOKENS.items():
        if family in name:
            return tokens
    return DEFAULT_MIN_CACHEABLE_TOKENS


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)
