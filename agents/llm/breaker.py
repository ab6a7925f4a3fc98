"""A circuit breaker per provider and model, kept in process memory (one per worker process).

Why: with an API that never answers, every decision used to wait the whole timeout on every retry
(30 s x 3 attempts = 90 s a subject), so a run over a book took hours and the scheduler sat on it.
After `breaker_failures` (CRM_LLM_BREAKER_FAILURES) failed or timed-out attempts in a row the breaker opens: for
`breaker_cooldown_s` (CRM_LLM_BREAKER_COOLDOWN_S) no call is made and `reason()` decides with the offline reasoner, saying
so in the decision. When the cool-down ends one caller gets a probe (a single attempt, no
retries); its success closes the breaker, its failure opens it for another cool-down. Callers
arriving while the probe is out also go offline, so a dead endpoint costs one timeout per
cool-down, not one per subject.

Attempts, not calls, are counted: a call the SDK retried twice before giving up is three failed
attempts. State is per process on purpose: a breaker is a local judgement about the path from this
machine to that endpoint, and a new process simply probes again.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Clock = Callable[[], float]
Gate = Literal["call", "probe", "open"]


@dataclass
class _State:
    failures: int = 0            # failed attempts in a row
    open_until: float = 0.0      # monotonic time the cool-down ends; 0 = closed
    probing: bool = False        # a probe call is out
    last_error: str = ""
    opened_times: int = 0


@dataclass(frozen=True)
class Admission:
    """What a caller may do now: `call` normally, send one `probe` attempt, or stay off (`open`)."""

    gate: Gate
    key: str
    note: str = ""


class CircuitBreakers:
    """One breaker per key ("anthropic:claude-haiku-5-5"); thread-safe."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def admit(self, key: str, *, threshold: int, cooldown_s: float) -> Admission:
        now = self._clock()
        with self._lock:
            st = self._states.setdefault(key, _State())
            if st.open_until == 0.0 and st.failures < max(threshold, 1):
                return Admission("call", key)
            if st.open_until == 0.0:  # reached the threshold without being opened yet (settings changed)
                st.open_until = now + cooldown_s
                st.opened_times += 1
            if now < st.open_until or st.probing:
                return Admission("open", key, self._open_note(key, st, now))
            st.probing = True
            return Admission("probe", key, f"{_label(key)}: cool-down over, one probe call sent")

    def record_success(self, key: str) -> None:
        with self._lock:
            self._states[key] = _State()

    def record_failure(self, key: str, *, attempts: int, error: str, threshold: int, cooldown_s: float,
                       probe: bool) -> bool:
        """Count failed attempts; True when this failure opened (or re-opened) the breaker."""
        now = self._clock()
        with self._lock:
            st = self._states.setdefault(key, _State())
            st.failures += max(attempts, 1)
            st.last_error = error
            if probe or st.failures >= max(threshold, 1):
                st.open_until = now + cooldown_s
                st.probing = False
                st.opened_times += 1
                return True
            return False

    def cancel_probe(self, key: str) -> None:
        """A probe admitted but never sent (no time left): the next caller may probe instead."""
        with self._lock:
            st = self._states.get(key)
            if st is not None:
                st.probing = False

    def is_open(self, key: str) -> bool:
        with self._lock:
            st = self._states.get(key)
            return bool(st and st.open_until and (self._clock() < st.open_until or st.probing))

    def reset(self) -> None:
        with self._lock:
            self._states.clear()

    def _open_note(self, key: str, st: _State, now: float) -> str:
        wait = max(0.0, st.open_until - now)
        last = f" (last: {st.last_error[:160]})" if st.last_error else ""
        when = "a probe call is out" if st.probing and now >= st.open_until else f"next try in {wait:.0f}s"
        return (f"{_label(key)} is failing: {st.failures} failed attempt(s) in a row{last}; "
                f"offline reasoner used, {when}")


def _label(key: str) -> str:
    provider, _, model = key.partition(":")
    return f"{provider} model {model}" if model else provider


def breaker_key(provider: str, model: str) -> str:
    return f"{provider}:{model}"


# The process's breakers: every run in this process shares what it learned about an endpoint.
BREAKERS = CircuitBreakers()
