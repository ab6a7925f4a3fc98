"""The store as an enrichment source: what the CRM's own records already imply.

For a contact:
- the account whose domain is the contact's email domain (when exactly one account has it);
- no such account: the company name the domain spells (a guess: people name companies, domains
  only hint at them); never for free-mail or reserved domains (gmail.com, example.com);
- the country from an international phone number's calling code, the account's country (only into
  an empty field, at the rating the builder measured on the book: `request.ratings`, else the
  prior), and the email domain's country-code TLD (never a generic one like .io), each as its own
  fact, so agreeing evidence strengthens the value and disagreeing evidence weakens it;
- the title in standard form, and the seniority and department it names;
- first and last name from a first.last@ address (a guess).
For an account (only when `request.enrich_account`): the website its contacts' addresses share,
the country its domain or its contacts' phone numbers point to, a country value tidied.

Everything it needs from the store arrives in the request (the context builder gathers it); it
reads nothing itself, so it runs the same in a back-test as in production.
"""
from __future__ import annotations

from collections import Counter

from agents.enrichment.sources import domains, places, titles
from agents.enrichment.sources.base import Fact, FactValue, LookupRequest, SourceReport

NAME = "store"
# Confidence of each kind of evidence. The agent treats anything below 0.7 as a guess a person checks.
ACCOUNT_BY_DOMAIN = 0.9
COMPANY_FROM_DOMAIN = 0.5
COUNTRY_FROM_PHONE = 0.85        # written in international form: the calling code is certain
COUNTRY_FROM_READ_PHONE = 0.65   # a national number the importer read as North American
COUNTRY_FROM_ACCOUNT = 0.75      # the prior: people mostly work where their company is, not always
# The rule copying the account's country to the contact: the builder rates it on the book itself
# (how often the two agree where a person entered the contact's country); the prior above stands in
# until enough such contacts exist.
CONTACT_COUNTRY_FROM_ACCOUNT = "contact_country_from_account"
COUNTRY_FROM_TLD = 0.6
ACCOUNT_COUNTRY_FROM_TLD = 0.7
COUNTRY_FROM_COLLEAGUES = 0.75
COUNTRY_TIDY = 0.95
TITLE_TIDY = 0.9
SENIORITY_FROM_TITLE = 0.9          # the title names a level (VP, Director, Manager, Chief ...)
SENIORITY_BY_DEFAULT = 0.7          # it names none: most likely an individual contributor
DEPARTMENT_FROM_TITLE = 0.85        # the title names a function
NAME_FROM_EMAIL = 0.6
WEBSITE_FROM_COLLEAGUES = 0.75


def _empty(value: FactValue | None) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: FactValue | None) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


class StoreSource:
    name = NAME

    def lookup(self, request: LookupRequest) -> SourceReport:
        facts: list[Fact] = []
        notes: list[str] = []
        if request.contact is not None:
            facts += self._contact(request, notes)
        if request.account is not None and request.enrich_account:
            facts += self._account(request, notes)
        return SourceReport(source=NAME, facts=facts, notes=notes)

    # -- contact --------------------------------------------------------------------------------
    def _contact(self, req: LookupRequest, notes: list[str]) -> list[Fact]:
        values = req.contact.values  # type: ignore[union-attr]
        facts: list[Fact] = []

        def fact(field: str, value: FactValue, confidence: float, evidence: str, rewrites: FactValue | None = None) -> None:
            facts.append(Fact(record_type="contact", field=field, value=value, source=NAME, confidence=confidence,
                              evidence=evidence, rewrites=rewrites))

        domain = req.email_domain
        company_domain = domains.is_company_domain(domain)
        linked = None
        if req.account is None and company_domain:
            matches = req.same_domain_accounts
            if len(matches) == 1:
                linked = matches[0]
                fact("account_id", linked.account_id, ACCOUNT_BY_DOMAIN,
                     f"the email domain {domain} is the domain of the account \u201c{linked.name}\u201d")
            elif len(matches) > 1:
                names = ", ".join(f"\u201c{a.name}\u201d (#{a.account_id})" for a in matches[:4])
                notes.append(f"the email domain {domain} belongs to {len(matches)} accounts ({names}): not linked")
            elif _empty(values.get("company")):
                company = domains.company_name_from_domain(domain)
                if company:
                    fact("company", company, COMPANY_FROM_DOMAIN, f"spelled by the email domain {domain}; no account has that domain")
        elif req.account is None and domain and not company_domain:
            notes.append(f"{domain} is a free-mail or reserved domain: it names no company")

        self._country(req, fact, linked.country if linked else None, company_domain)
        self._title(values.get("title"), fact, notes)

        names = domains.names_from_email(req.email)
        if names is not None and (_empty(values.get("first_name")) or _empty(values.get("last_name"))):
            first, last = names
            fact("first_name", first, NAME_FROM_EMAIL, f"the address {req.email} reads first.last")
            fact("last_name", last, NAME_FROM_EMAIL, f"the address {req.email} reads first.last")
        return facts

    def _country(self, req: LookupRequest, fact, linked_country: str | None, company_domain: bool) -> None:
        current = _text(req.contact.values.get("country"))  # type: ignore[union-attr]
        known = places.country(current)
        if current and known is not None and known.name != current:
            fact("country", known.name, COUNTRY_TIDY, f"\u201c{current}\u201d is how {known.name} is sometimes written",
                 rewrites=current)
        phone_country = places.country_of_phone(req.phone)
        if phone_country is not None:
            fact("country", phone_country.name, COUNTRY_FROM_PHONE,
                 f"the phone number {req.phone} has the calling code +{phone_country.calling_code}")
        else:
            read = places.country_of_phone(req.phone_normalized) if req.phone else None
            if read is not None:
                fact("country", read.name, COUNTRY_FROM_READ_PHONE, f"the phone number {req.phone} read as {req.phone_normalized}")
        account_country = _text(req.account.values.get("country")) if req.account is not None else linked_country
        from_account = places.country(account_country)
        # Only for a gap: a country someone entered is the very exception the copy rule gets wrong.
        if from_account is not None and current is None:
            where = "of the contact's account" if req.account is not None else "of the account its email domain matches"
            rated = req.rating(CONTACT_COUNTRY_FROM_ACCOUNT, COUNTRY_FROM_ACCOUNT)
            fact("country", from_account.name, rated.rating,
                 f"the country {where}" + (f" \u2013 {rated.sentence}" if rated.sentence else ""))
        tld_country = places.country_of_domain(req.email_domain) if company_domain else None
        if tld_country is not None:
            fact("country", tld_country.name, COUNTRY_FROM_TLD, f"the email domain {req.email_domain} ends in .{tld_country.tlds[0]}")

    def _title(self, title: FactValue | None, fact, notes: list[str]) -> None:
        text = title if isinstance(title, str) and title.strip() else None
        if text is None:
            return
        why_not = titles.not_a_title(text)
        if why_not:
            notes.append(f"the title is not used: {why_not}")
            return
        tidy = titles.tidy(text)
        if tidy is not None:
            fact("title", tidy, TITLE_TIDY, "the title in standard form (case, spacing, abbreviations)", rewrites=text)
        level = titles.seniority(text)
        if level == "individual" and titles.names_individual(text):
            fact("seniority", level, SENIORITY_FROM_TITLE - 0.05, f"the title \u201c{tidy or text}\u201d names an individual role")
        elif level == "individual":
            fact("seniority", level, SENIORITY_BY_DEFAULT, f"the title \u201c{tidy or text}\u201d names no management level")
        elif level is not None:
            fact("seniority", level, SENIORITY_FROM_TITLE, f"the title \u201c{tidy or text}\u201d")
        function = titles.department(text)
        if function is not None:
            fact("department", function, DEPARTMENT_FROM_TITLE, f"the title \u201c{tidy or text}\u201d")

    # -- account --------------------------------------------------------------------------------
    def _account(self, req: LookupRequest, notes: list[str]) -> list[Fact]:
        facts: list[Fact] = []

        def fact(field: str, value: FactValue, confidence: float, evidence: str, rewrites: FactValue | None = None) -> None:
            facts.append(Fact(record_type="account", field=field, value=value, source=NAME, confidence=confidence,
                              evidence=evidence, rewrites=rewrites))

        values = req.account.values  # type: ignore[union-attr]
        company_domains = [d for d in req.colleague_domains if domains.is_company_domain(d)]
        website = req.account_domain or _text(values.get("website"))
        top_domain = None
        if company_domains:
            top, count = Counter(company_domains).most_common(1)[0]
            if count * 3 >= len(company_domains) * 2:
                top_domain = top
                if not website:
                    fact("website", top, WEBSITE_FROM_COLLEAGUES, f"{count} of the account's {len(company_domains)} contacts write from {top}")
            elif not website:
                notes.append(f"the account's contacts write from {len(set(company_domains))} different domains: no website inferred")
        current = _text(values.get("country"))
        known = places.country(current)
        if current and known is not None and known.name != current:
            fact("country", known.name, COUNTRY_TIDY, f"\u201c{current}\u201d is how {known.name} is sometimes written", rewrites=current)
        site = website or top_domain
        tld_country = places.country_of_domain(domains.host_of(site)) if site else None
        if tld_country is not None:
            fact("country", tld_country.name, ACCOUNT_COUNTRY_FROM_TLD, f"the company domain {site} ends in .{tld_country.tlds[0]}")
        phone_countries = [c.name for c in (places.country_of_phone(p) for p in req.colleague_phones) if c is not None]
        if len(phone_countries) >= 2:
            top, count = Counter(phone_countries).most_common(1)[0]
            if count * 3 >= len(phone_countries) * 2:
                fact("country", top, COUNTRY_FROM_COLLEAGUES, f"{count} of the account's {len(phone_countries)} contact phone numbers are from {top}")
        return facts
