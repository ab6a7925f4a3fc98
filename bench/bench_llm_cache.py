"""Prompt caching on a steady run: the share of input tokens read from the cache, per agent and overall.

    .venv/bin/python bench/bench_llm_cache.py [--scale 1.0] [--agents lead_scoring,follow_up,...] [--quick]

On the demo book (`seed-demo --scale`, SQLite in a temporary file, its lead model learned once
before it is copied, as the nightly learn job leaves it), every agent runs over every
subject due (`run_agent(agent, provider="anthropic")`), once with a cold cache and once more with
the cache warm, each run on a fresh copy of the same book, through the real
`anthropic` SDK talking to the fake Messages server of tests/fakes (in this process). The fake
reports usage as the API does (tests/fakes/anthropic_server.py: a marked prefix of at least the
model's minimum is written by the first request and read by later ones within its lifetime) and
answers each request with the offline reasoner's decision for the context being reasoned, so the
runs store real decisions. The cached share is read from the usage fields of the replies:
cache_read_input_tokens / (input_tokens + cache_read_input_tokens + cache_creation_input_tokens).

Two configurations, each on a fresh copy of the book with a cold cache:
- baseline: the book block (the learned model's summary, the policy, worked examples) in the
  user message, as before issue 16's caching work: a client wrapper moves it there before the
  request leaves, so the system holds the instructions (and the schema when they alone reach the
  minimum);
- cached: the book block in the system, marked for the cache (agents.llm.anthropic_provider).
Reported: the share of the second (steady) run and of the first, per agent (the pipeline's per-deal
flags and its whole-pipeline review, which runs on the large tier, on rows of their own) and overall,
and the stored cost per decision of the steady run, cached against baseline. The bar: >= 50 % overall.
The fake's cache lives 5 minutes from its last use, as the API's does; both runs fit in it.
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_llm_batches import learn_once  # noqa: E402  (the path above makes the package importable)
from bench.bench_llm_economy import copy_store  # noqa: E402
from bench.bench_scheduler import env_vars, seed_book  # noqa: E402

AGENTS = ("lead_scoring", "follow_up", "enrichment", "pipeline", "meeting")
REVIEW_ROW = "pipeline review"  # the pipeline agent's whole-pipeline review, apart from its per-deal flags
BAR = 0.5


@dataclass
class Tally:
    decisions: int = 0
    failed: int = 0
    input_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost: float = 0.0
    models: set[str] = field(default_factory=set)

    def add(self, envelope: Any) -> None:
        if envelope.provider != "anthropic":
            return  # decided on this machine (sensitive, or the breaker): no tokens were sent
        u = envelope.usage
        self.decisions += 1
        self.failed += int(envelope.failed)
        self.input_tokens += u.input_tokens
        self.cache_read += u.cache_read_tokens
        self.cache_write += u.cache_write_tokens
        self.cost += u.cost_usd
        self.models.add(envelope.model)

    @property
    def all_input(self) -> int:
        return self.input_tokens + self.cache_read + self.cache_write

    @property
    def share(self) -> float:
        return self.cache_read / self.all_input if self.all_input else 0.0

    def merged(self, other: Tally) -> Tally:
        return Tally(self.decisions + other.decisions, self.failed + other.failed, self.input_tokens + other.input_tokens,
                     self.cache_read + other.cache_read, self.cache_write + other.cache_write, self.cost + other.cost,
                     self.models | other.models)


# -- the fake model: the offline reasoner's decision for the context being reasoned --------------------------
class _Replies:
    """What the fake answers next; set in this process just before each model call."""

    next: dict[str, Any] | None = None


@contextlib.contextmanager
def fake_model() -> Iterator[str]:
    from agents.llm import offline_provider
    from agents.llm.anthropic_provider import AnthropicProvider
    from tests.fakes.anthropic_server import FakeAnthropicServer, error, reply_json

    server = FakeAnthropicServer()

    def respond(req):
        if _Replies.next is None:
            return error(400, "fake bench model: no decision handed over for this request")(req)
        return reply_json(_Replies.next)(req)

    real_complete = AnthropicProvider.complete

    def complete_with_reply(self, request, limits):
        # The run itself is untouched: only the fake's next answer is chosen here, from the same context.
        _Replies.next = offline_provider.decide(request.agent, request.ctx).model_dump(mode="json")
        try:
            return real_complete(self, request, limits)
        finally:
            _Replies.next = None

    server.always(respond)
    server.start()
    AnthropicProvider.complete = complete_with_reply
    try:
        yield server.url
    finally:
        AnthropicProvider.complete = real_complete
        server.stop()


# -- the baseline: the book block in the user message ----------------------------------------------------
class _BlockInUserMessage:
    """An `anthropic.Anthropic` whose requests carry the book block at the head of the user message."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.messages = self

    def with_options(self, **options: Any) -> _BlockInUserMessage:
        return _BlockInUserMessage(self._client.with_options(**options))

    def create(self, **params: Any) -> Any:
        from agents.llm.anthropic_provider import SCHEMA_LEAD
        from agents.llm.caching import estimate_tokens, min_cacheable_tokens

        system = list(params.get("system") or [])
        if len(system) > 1:
            first, book = dict(system[0]), "\n\n".join(b["text"] for b in system[1:])
            instructions = first["text"]
            if SCHEMA_LEAD in instructions and estimate_tokens(instructions) < min_cacheable_tokens(params["model"]):
                first["text"] = instructions.split(SCHEMA_LEAD)[0]  # alone under the minimum: no schema, as before
            [message] = params["messages"]
            params = {**params, "system": [first],
                      "messages": [{**message, "content": f"{book}\n\n{message['content']}"}]}
        return self._client.messages.create(**params)


def baseline_factory(provider: str, settings: Any) -> Any:
    from agents.llm import anthropic_provider

    return _BlockInUserMessage(anthropic_provider.build_client(settings))


# -- the runs ------------------------------------------------------------------------------------------
def steady_runs(seeded: Path, tmp: Path, fake_url: str, agents: list[str], *, baseline: bool) -> dict[str, list[Tally]]:
    """Per agent: the tallies of a first run (cold cache) and of the same run again (warm cache).

    Each run starts from its own copy of the seeded book: a run changes what the next one finds due
    (a follow-up planned, a brief saved), and the steady state is the same work with the cache warm.
    """
    from orchestration.runner import run_agent
    from tests.fakes.anthropic_server import forget_cache

    forget_cache()
    out: dict[str, list[Tally]] = {agent: [] for agent in agents}
    label = "base" if baseline else "cached"
    for n in (1, 2):
        url = copy_store(seeded, tmp / f"{label}-{n}.db")
        with env_vars(CRM_DATABASE_URL=url, ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=fake_url,
                      CRM_LLM_PROVIDER="anthropic", CRM_LLM_BATCH_ABOVE="1000000000",
                      CRM_LLM_BREAKER_FAILURES="1000000"):
            for agent in agents:
                tally, review = Tally(), Tally()

                def add(envelope: Any, tally: Tally = tally, review: Tally = review) -> None:
                    # The whole-pipeline review runs on another tier with its own prefix: its own row.
                    (review if envelope.context_snapshot.get("kind") == "review" else tally).add(envelope)

                run_agent(agent, provider="anthropic", on_envelope=add,
                          client_factory=baseline_factory if baseline else None)
                out[agent].append(tally)
                if agent == "pipeline":
                    out.setdefault(REVIEW_ROW, []).append(review)
    return out


def report(label: str, runs: dict[str, list[Tally]]) -> tuple[Tally, Tally]:
    print(f"{label}:")
    first_all, steady_all = Tally(), Tally()
    for agent, (first, steady) in runs.items():
        models = ", ".join(sorted(steady.models | first.models)) or "-"
        print(f"  {agent:<15} {steady.decisions:5d} calls, {steady.all_input / max(1, steady.decisions):7.0f} input tokens "
              f"each; cached share: steady run {steady.share:6.1%}, first run {first.share:6.1%}; "
              f"${steady.cost / max(1, steady.decisions):.5f} a decision"
              f"{f'; {steady.failed} failed' if steady.failed else ''} ({models})")
        first_all, steady_all = first_all.merged(first), steady_all.merged(steady)
    print(f"  {'all agents':<15} {steady_all.decisions:5d} calls; cached share: steady run {steady_all.share:6.1%}, "
          f"first run {first_all.share:6.1%}; stored cost of the steady run ${steady_all.cost:.4f}")
    return first_all, steady_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="demo book size (seed-demo --scale); 1.0 = 800 contacts")
    parser.add_argument("--agents", default=",".join(AGENTS), help="comma-separated agents to run")
    parser.add_argument("--quick", action="store_true", help="a small book (scale 0.25)")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale = min(args.scale, 0.25)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    unknown = sorted(set(agents) - set(AGENTS))
    if unknown:
        raise SystemExit(f"unknown agent(s): {', '.join(unknown)}; one of {', '.join(AGENTS)}")

    tmp = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        seeded = tmp / "seeded.db"
        summary, leads = seed_book(f"sqlite:///{seeded}", args.scale)
        learn_once(f"sqlite:///{seeded}")  # one stored lead model for every run, as the nightly learn job leaves it
        print(f"book: {summary}; {len(leads)} open leads; agents: {', '.join(agents)}")
        results = {}
        with fake_model() as fake_url:
            for label, baseline in (("baseline: book block in the user message", True),
                                    ("cached: book block in the system, marked for the cache", False)):
                started = time.perf_counter()
                runs = steady_runs(seeded, tmp, fake_url, agents, baseline=baseline)
                results[baseline] = report(f"{label} ({time.perf_counter() - started:.0f} s)", runs)
        (_, base), (_, cached) = results[True], results[False]
        per_base = base.cost / max(1, base.decisions)
        per_cached = cached.cost / max(1, cached.decisions)
        verdict = "meets" if cached.share >= BAR else "misses"
        print(f"steady run, all agents: cached share {cached.share:.1%} vs {base.share:.1%} baseline ({verdict} the "
              f"{BAR:.0%} bar); stored cost per decision ${per_cached:.5f} vs ${per_base:.5f} "
              f"(ratio {per_cached / max(per_base, 1e-12):.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
