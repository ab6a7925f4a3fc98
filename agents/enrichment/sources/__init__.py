"""Enrichment sources: plug-ins behind one interface (`EnrichmentSource.lookup(request) -> SourceReport`).

Shipped: `StoreSource` (what the CRM's own records imply: the email domain, the phone number, the
title, the account) and `HttpEnrichmentSource` (a generic JSON-over-HTTP API, configured by
`HttpSourceConfig`, i.e. CRM_ENRICHMENT_API_URL / _KEY / ...; off unless configured).
A source has no database access: the context builder reads the store and passes plain data in.
`configured_sources()` is the list a run uses; `gather()` asks each source and collects its facts.
"""
from __future__ import annotations

from collections.abc import Sequence

from agents.enrichment.sources.base import (
    AccountHint,
    EnrichmentSource,
    Fact,
    FactValue,
    LookupRequest,
    RecordSnapshot,
    RecordType,
    RuleRating,
    SourceReport,
)
from agents.enrichment.sources.http_api import HttpEnrichmentSource, HttpSourceConfig
from agents.enrichment.sources.store import StoreSource


def configured_sources(http: HttpSourceConfig | None = None) -> list[EnrichmentSource]:
    """The store source, plus the HTTP API when one is configured (argument, else the environment)."""
    config = http if http is not None else HttpSourceConfig()
    sources: list[EnrichmentSource] = [StoreSource()]
    if config.enabled:
        sources.append(HttpEnrichmentSource(config))
    return sources


def gather(sources: Sequence[EnrichmentSource], request: LookupRequest) -> list[SourceReport]:
    """Each source's report; a source that breaks its promise and raises becomes a note, not a crash."""
    reports = []
    for source in sources:
        try:
            reports.append(source.lookup(request))
        except Exception as exc:  # a plug-in bug must not stop enrichment of the other records
            reports.append(SourceReport(source=getattr(source, "name", type(source).__name__),
                                        notes=[f"source failed: {type(exc).__name__}: {exc}"], failed=True))
    return reports


__all__ = [
    "AccountHint", "EnrichmentSource", "Fact", "FactValue", "HttpEnrichmentSource", "HttpSourceConfig", "LookupRequest",
    "RecordSnapshot", "RecordType", "RuleRating", "SourceReport", "StoreSource", "configured_sources", "gather",
]
