"""A generic HTTP enrichment API: JSON over HTTP, a base URL and a key from configuration.

The API it speaks (any provider can be fronted by a small adapter that answers like this):

    GET {base_url}/person?email=<address>     for a contact
    GET {base_url}/company?domain=<domain>    for an account
    Authorization: Bearer <api_key>

    200 {"data": {"title": "VP Sales", "employees": 250, "industry": {"value": "Software", "confidence": 0.8}}}
        (the "data" wrapper is optional; a value is a scalar or {"value": ..., "confidence": ...})
    404 nothing known

Field names are mapped to the CRM's (employees -> employee_count, job_title -> title, ...).
Every value is checked (a number where a number belongs, a LinkedIn address that is one, a
plausible year, a seniority or department the CRM's vocabulary knows); a value that fails is
left out with a note, as is any unknown field. Time-outs, refused connections, HTTP errors and
bodies that are not JSON yield no facts, a note and `failed=True`, never an exception:
enrichment waits for the next run. A record is asked about only when it has a gap the API could
fill. Sensitive records are never sent: the request carries the email address and the domain,
which a sensitive record keeps on this machine.
"""
from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.enrichment.sources import places, titles
from agents.enrichment.sources.base import Fact, FactValue, LookupRequest, RecordType, SourceReport
from agents.enrichment.sources.domains import host_of

MAX_BODY_BYTES = 1_000_000

PERSON_FIELDS = {
    "title": "title", "job_title": "title", "position": "title", "role": "title",
    "first_name": "first_name", "given_name": "first_name", "last_name": "last_name", "family_name": "last_name",
    "linkedin": "linkedin_url", "linkedin_url": "linkedin_url", "seniority": "seniority", "department": "department",
    "city": "city", "country": "country",
}
COMPANY_FIELDS = {
    "industry": "industry", "sector": "industry", "employees": "employee_count", "employee_count": "employee_count",
    "headcount": "employee_count", "revenue": "annual_revenue", "annual_revenue": "annual_revenue",
    "country": "country", "website": "website", "domain": "website", "city": "city", "founded": "founded_year",
    "founded_year": "founded_year", "linkedin": "linkedin_url", "linkedin_url": "linkedin_url", "description": "description",
}
# Providers' seniority words -> the CRM's levels (agents.learning.features.seniority).
SENIORITY_WORDS = {
    "c_level": "c_level", "c-level": "c_level", "c_suite": "c_level", "c-suite": "c_level", "executive": "c_level",
    "owner": "c_level", "founder": "c_level", "partner": "c_level", "vp": "vp", "vice president": "vp",
    "director": "director", "head": "director", "manager": "manager", "lead": "manager", "senior": "individual",
    "entry": "individual", "junior": "individual", "individual": "individual", "staff": "individual",
    "intern": "individual", "training": "individual",
}
DEPARTMENT_WORDS = {"executive": "executive", "hr": "people", "human resources": "people", "legal": "legal",
                    "support": "customer_success", "design": "product"}
PERSON_TARGETS = frozenset(PERSON_FIELDS.values())
COMPANY_TARGETS = frozenset(COMPANY_FIELDS.values())
_LINKEDIN = re.compile(r"^https://([a-z]{2,3}\.)?linkedin\.com/(in|company|school)/[\w\-%.]{1,100}/?$", re.IGNORECASE)
_WEBSITE = re.compile(r"^(https?://)?([a-z0-9-]+\.)+[a-z]{2,}(/\S*)?$", re.IGNORECASE)


class HttpSourceConfig(BaseSettings):
    """Read from CRM_ENRICHMENT_API_* (URL, KEY, TIMEOUT_S, NAME, ...) or passed in directly."""

    model_config = SettingsConfigDict(env_prefix="CRM_ENRICHMENT_API_", extra="ignore")

    url: str | None = None                 # unset: the source is off
    key: str | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    name: str = Field(default="enrichment_api", min_length=1, max_length=60)  # recorded as each value's source
    default_confidence: float = Field(default=0.7, ge=0, le=1)
    max_confidence: float = Field(default=0.9, ge=0, le=1)  # what the API claims is capped here

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if urllib.parse.urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"CRM_ENRICHMENT_API_URL must be an http(s) address, got {value!r}")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.url)


class _BadValue(ValueError):
    pass


def _text(value: Any, limit: int = 300, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise _BadValue("not text")
    text = value.strip() if multiline else " ".join(value.split())
    if not text or len(text) > limit:
        raise _BadValue(f"empty or longer than {limit} characters")
    return text


def _int(value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise _BadValue("not a number")
    if isinstance(value, str) and value.strip().replace(",", "").isdigit():
        value = int(value.strip().replace(",", ""))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not lo <= value <= hi:
        raise _BadValue(f"not a whole number between {lo} and {hi}")
    return value


def clean_value(field: str, value: Any) -> FactValue:
    """The value as the CRM stores it, or _BadValue saying why it is not one."""
    if field == "employee_count":
        return _int(value, 1, 5_000_000)
    if field == "founded_year":
        return _int(value, 1600, 2100)
    if field == "annual_revenue":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value > 1e13:
            raise _BadValue("not a non-negative amount")
        return float(value)
    if field == "linkedin_url":
        text = _text(value, 200)
        if not _LINKEDIN.match(text):
            raise _BadValue("not a LinkedIn profile or company address")
        return text
    if field == "website":
        text = _text(value, 200)
        if not _WEBSITE.match(text):
            raise _BadValue("not a web address")
        return text.lower()
    if field == "country":
        text = _text(value, 100)
        known = places.country(text)
        if known is not None:
            return known.name
        if not re.fullmatch(r"[A-Za-z .'\-]{2,60}", text):
            raise _BadValue("not a country name")
        return text
    if field == "description":
        return _text(value, 1000, multiline=True)
    if field == "title":
        text = _text(value, 100)
        why_not = titles.not_a_title(text)
        if why_not:
            raise _BadValue(f"not a job title: {why_not}")
        return text
    if field in ("city", "first_name", "last_name"):
        text = _text(value, 80)
        if not re.fullmatch(r"[^\W\d_][^\W\d_ .'\-]*(?:[ .'\-]+[^\W\d_]+)*\.?", text) or len(text.split()) > 5:
            raise _BadValue("not a name")
        return text
    if field == "seniority":
        level = SENIORITY_WORDS.get(_text(value, 40).lower())
        if level is None:
            raise _BadValue(f"not one of the CRM's seniority levels ({', '.join(sorted(set(SENIORITY_WORDS.values())))})")
        return level
    if field == "department":
        text = _text(value, 60)
        name = titles.department(text) or DEPARTMENT_WORDS.get(text.lower())
        if name is None:
            raise _BadValue("not a department the CRM knows")
        return name
    return _text(value, 200)


class HttpEnrichmentSource:
    def __init__(self, config: HttpSourceConfig) -> None:
        self.config = config
        self.name = config.name

    def lookup(self, request: LookupRequest) -> SourceReport:
        notes: list[str] = []
        facts: list[Fact] = []
        if not self.config.enabled:
            return SourceReport(source=self.name, notes=["no enrichment API configured (CRM_ENRICHMENT_API_URL)"])
        if request.sensitive:
            return SourceReport(source=self.name, notes=["sensitive record: not sent to the enrichment API"])
        failures = 0
        if request.contact is not None and request.email and request.wants("contact", PERSON_TARGETS):
            found, failed = self._ask("person", {"email": request.email}, "contact", PERSON_FIELDS, notes)
            facts += found
            failures += failed
        domain = request.account_domain
        if request.account is not None and not domain:
            website = request.account.values.get("website")
            domain = host_of(website) if isinstance(website, str) else None
        if request.account is not None and request.enrich_account and domain and request.wants("account", COMPANY_TARGETS):
            found, failed = self._ask("company", {"domain": domain}, "account", COMPANY_FIELDS, notes)
            facts += found
            failures += failed
        return SourceReport(source=self.name, facts=facts, notes=notes, failed=failures > 0)

    def _ask(self, path: str, query: dict[str, str], record: RecordType, mapping: dict[str, str],
             notes: list[str]) -> tuple[list[Fact], bool]:
        """The facts of one lookup, and whether it failed (as opposed to knowing nothing)."""
        what = f"{path} lookup"
        payload, failed = self._get(path, query, notes, what)
        if payload is None:
            return [], failed
        data = payload.get("data", payload) if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            notes.append(f"{what}: the answer is not a JSON object of fields: ignored")
            return [], True
        facts = []
        unknown = []
        for key, raw in data.items():
            field = mapping.get(str(key).lower())
            if field is None:
                unknown.append(str(key))
                continue
            confidence = self.config.default_confidence
            if isinstance(raw, dict):
                claimed = raw.get("confidence")
                if isinstance(claimed, (int, float)) and not isinstance(claimed, bool) and 0 <= claimed <= 1:
                    confidence = float(claimed)
                raw = raw.get("value")
            if raw is None or raw == "":
                continue
            try:
                value = clean_value(field, raw)
            except _BadValue as exc:
                notes.append(f"{what}: {key} = {str(raw)[:60]!r} ignored: {exc}")
                continue
            facts.append(Fact(record_type=record, field=field, value=value, source=self.name,
                              confidence=round(min(confidence, self.config.max_confidence), 3),
                              evidence=f"{self.name} {path} record for {next(iter(query.values()))}"))
        if unknown:
            notes.append(f"{what}: fields the CRM does not keep were left out: {', '.join(sorted(unknown)[:8])}")
        return facts, False

    def _get(self, path: str, query: dict[str, str], notes: list[str], what: str) -> tuple[Any, bool]:
        """(the parsed JSON or None, whether the call failed). A 404 is an answer: nothing known."""
        url = f"{self.config.url}/{path}?{urllib.parse.urlencode(query)}"
        headers = {"Accept": "application/json", "User-Agent": "crm-enrichment/1"}
        if self.config.key:
            headers["Authorization"] = f"Bearer {self.config.key}"
        req = urllib.request.Request(url, headers=headers, method="GET")
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:  # noqa: S310 - scheme checked in config
                body = resp.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                notes.append(f"{what}: nothing known")
                return None, False
            if exc.code in (401, 403):
                notes.append(f"{what}: the API refused the key (HTTP {exc.code})")
            else:
                notes.append(f"{what}: HTTP {exc.code} from the enrichment API: skipped until the next run")
            return None, True
        except (TimeoutError, socket.timeout):
            notes.append(f"{what}: no answer within {self.config.timeout_s:g} s: skipped until the next run")
            return None, True
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                notes.append(f"{what}: no answer within {self.config.timeout_s:g} s: skipped until the next run")
            else:
                notes.append(f"{what}: the enrichment API cannot be reached ({reason}): skipped until the next run")
            return None, True
        except (OSError, ValueError) as exc:  # a connection reset mid-body, a malformed URL
            notes.append(f"{what}: {type(exc).__name__}: {exc}: skipped until the next run")
            return None, True
        if len(body) > MAX_BODY_BYTES:
            notes.append(f"{what}: the answer is larger than {MAX_BODY_BYTES} bytes: ignored")
            return None, True
        try:
            return json.loads(body.decode("utf-8")), False
        except (UnicodeDecodeError, json.JSONDecodeError):
            notes.append(f"{what}: the answer is not JSON: ignored")
            return None, True
