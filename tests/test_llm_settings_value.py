"""The reasoning wing's settings value carries every setting the environment gives it.

The settings are declared twice on purpose: `crm_core.settings.Settings` reads the environment (the
store's boundary), `agents.llm.settings.LLMSettings` is the value the reasoning wing takes, so it
never reads the environment itself. `Settings.llm()` copies one into the other; this test fails
when a field of the value is left at its default although the environment set it.
"""
from __future__ import annotations

import json

from agents.llm.settings import LLMSettings
from crm_core.settings import Settings

ENVIRONMENT = {
    "CRM_LLM_PROVIDER": "ollama",
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
    "CRM_LLM_TIMEOUT_S": "7.5",
    "CRM_LLM_MAX_RETRIES": "4",
    "CRM_OLLAMA_HOST": "http://127.0.0.1:11434",
    "CRM_OLLAMA_MODEL": "qwen2.5:7b",
    "CRM_MODEL_SMALL": "small-model",
    "CRM_MODEL_MID": "mid-model",
    "CRM_MODEL_LARGE": "large-model",
    "CRM_LLM_BREAKER_FAILURES": "9",
    "CRM_LLM_BREAKER_COOLDOWN_S": "12",
    "CRM_LLM_BATCH_ABOVE": "42",
    "CRM_LLM_BATCH_POLL_S": "3",
    "CRM_LLM_PRICES": json.dumps({"small-model": {"input": 1, "output": 2, "cache_read": 0.1, "cache_write": 1.25}}),
}


def test_every_field_of_the_value_comes_from_the_environment(monkeypatch):
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    value = Settings().llm()
    default = LLMSettings()
    left_at_default = [name for name in LLMSettings.model_fields if getattr(value, name) == getattr(default, name)]
    assert left_at_default == [], f"Settings.llm() does not carry: {left_at_default}"
    assert value.model_small == "small-model" and value.batch_above == 42 and value.timeout_s == 7.5
