"""Settings read from the environment (CRM_* variables), validated by pydantic.

`get_settings()` follows the environment at call time on purpose: Streamlit's AppTest and the
tests switch `CRM_DATABASE_URL` between runs inside one process. Validating the model costs about
2 ms, and a decision asks for the settings several times, so the validated object is reused
until a variable it reads changes.
"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.llm.pricing import parse_price_table
from agents.llm.settings import LLMSettings, ProviderName

__all__ = ["LLMSettings", "ProviderName", "Settings", "get_settings"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "data" / "crm.db"

class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore", frozen=True)

    database_url: str = Field(default=f"sqlite:///{DEFAULT_SQLITE_PATH}")
    sqlite_busy_timeout_ms: int = 5000

    # Reasoning layer. The provider defaults to anthropic when a key is set, else offline.
    llm_provider: ProviderName | None = None
    anthropic_api_key: str | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")
    llm_timeout_s: float = 30.0
    llm_max_retries: int = 2
    ollama_host: str | None = None  # e.g. http://127.0.0.1:11434; unset = no local model
    ollama_model: str = "llama3.1:8b"
    # Model tiers: names are configuration, never code.
    model_small: str = "claude-haiku-5-5"
    model_mid: str = "claude-sonnet-5-5"
    model_large: str = "claude-opus-5-5"
    # JSON price overrides per model (agents.llm.pricing); read as text, parsed by llm().
    llm_prices: str | None = None
    # Circuit breaker per provider and model: after this many failed or timed-out attempts in a row,
    # decisions go to the offline reasoner for the cool-down, then one probe call tests the model.
    llm_breaker_failures: int = 3
    llm_breaker_cooldown_s: float = 60.0
    # A run reasoning about more subjects than this goes through the Message Batches API (half price,
    # asynchronous), polled every llm_batch_poll_s seconds; single events stay synchronous.
    llm_batch_above: int = 1000
    llm_batch_poll_s: float = 30.0
    # Wall-clock budgets: after the deadline no model is called (the rest is decided offline).
    # 0 = none for `python -m orchestration run`; a scheduler job always has one, and never keeps its lease past it.
    llm_run_deadline_s: float = 0.0
    job_deadline_seconds: int = 600

    # Oversight.
    supervised: bool = False
    queue_expiry_hours: int = 72

    # Outgoing sinks; unset = everything lands in the outbox table.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "crm@localhost"
    webhook_url: str | None = None

    # Scheduler.
    pipeline_scan_minutes: int = 60
    # Comma-separated names the pipeline agent looks for in notes, emails and transcripts.
    competitors: str = ""
    job_lease_seconds: int = 120
    # Events for one subject within this many seconds of its last decision (or while its job waits
    # or runs) fold into one follow-up decision once the subject has been quiet this long; a subject
    # decided less than six times this long ago gets its next decision no sooner than that
    # (orchestration.scheduler.planners.enqueue_coalesced). 0 = no coalescing.
    coalesce_seconds: float = 5.0
    # An idle worker checks this often for a sign of new work (a queued job, a new activity) and
    # starts at once instead of at its next poll (crm_core.wakeups); 0 = poll only.
    wake_check_seconds: float = 0.05
    job_max_attempts: int = 5

    # Imports and reporting. Mappings saved from the Import page go here (the shipped ones in
    # mappings/ are never overwritten); unset = data/mappings next to the default store.
    mappings_dir: Path | None = None
    # The currency every total is shown in until someone sets it on the Pipeline health page;
    # unset = the currency most open deals are in.
    reporting_currency: str | None = None

    # HTTP API (python -m api). Loopback by default: put a TLS proxy in front to expose it.
    api_host: str = "127.0.0.1"
    api_port: int = 8600
    api_max_body_bytes: int = 2_000_000   # larger requests get 413 and nothing is stored
    api_max_batch: int = 1000             # events in one POST /v1/events
    api_cors_origins: str = ""            # comma-separated origins a browser snippet may post from
    webhook_tolerance_seconds: int = 300  # inbound signatures older than this are replays
    webhook_max_attempts: int = 8         # outbound deliveries, with exponential backoff
    webhook_timeout_s: float = 10.0

    # Shared sales inbox read for replies (IMAP); unset host = no polling.
    imap_host: str | None = None
    imap_port: int = 993
    imap_ssl: bool = True
    imap_user: str | None = None
    imap_password: str | None = None
    imap_folder: str = "INBOX"
    imap_poll_seconds: int = 60

    # Sign-in. A browser session ends after session_hours, or after session_idle_minutes unused.
    session_hours: float = 12.0
    session_idle_minutes: float = 60.0
    max_failed_sign_ins: int = 5      # consecutive failures before the account is locked
    lockout_minutes: float = 15.0
    admin_password: str | None = None  # CRM_ADMIN_PASSWORD: the first admin's password on first start
    user: str | None = None           # CRM_USER: who the CLI acts as when --as is not given
    token: str | None = None          # CRM_TOKEN: an API token the CLI acts with (its owner)

    @property
    def effective_provider(self) -> ProviderName:
        if self.llm_provider:
            return self.llm_provider
        return "anthropic" if self.anthropic_api_key else "offline"

    def llm(self) -> LLMSettings:
        """The reasoning layer's part of the settings, as the value `agents.llm` takes.

        Raises ConfigError (a UserError) when CRM_LLM_PRICES does not parse.
        """
        return LLMSettings(
            provider=self.llm_provider,
            anthropic_api_key=self.anthropic_api_key,
            anthropic_base_url=self.anthropic_base_url,
            timeout_s=self.llm_timeout_s,
            max_retries=self.llm_max_retries,
            ollama_host=self.ollama_host,
            ollama_model=self.ollama_model,
            model_small=self.model_small,
            model_mid=self.model_mid,
            model_large=self.model_large,
            breaker_failures=self.llm_breaker_failures,
            breaker_cooldown_s=self.llm_breaker_cooldown_s,
            batch_above=self.llm_batch_above,
            batch_poll_s=self.llm_batch_poll_s,
            prices=parse_price_table(self.llm_prices),
        )

    @property
    def competitor_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n.strip() for n in self.competitors.split(",") if n.strip()))

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o.strip().rstrip("/") for o in self.api_cors_origins.split(",") if o.strip()))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_ENV_PREFIXES = ("CRM_", "ANTHROPIC_")
_cached: tuple[tuple[tuple[str, str], ...], Settings] | None = None


def get_settings() -> Settings:
    global _cached
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(_ENV_PREFIXES)))
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    settings = Settings()
    _cached = (key, settings)
    return settings
