"""Everything that happened: activities, email threads, meetings and tasks, shaped like a real funnel.

Three layers of events, in this order:
1. the sales story of each deal (stage changes, meetings, calls, notes, email threads, the
   champion's pricing visits before a demo, a decision maker joining late-stage deals that
   are won, lost deals going quiet before they close);
2. what marketing does to everyone (newsletter and nurture sends with opens and clicks that
   follow intent), outbound sequences and unprompted questions;
3. web browsing, downloads and forms, shared out of what is left of the activity budget by
   each contact's intent and lifecycle stage, so converted people engage more.
"""
from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from crm_core.demo import texts, vocab
from crm_core.demo.records import ActivityRec, ContactRec, DealRec, DemoBook, EmailRec, MeetingRec, TaskRec
from crm_core.demo.timeline import days, next_weekday, sample_in_segments, whole_seconds, working_moment

WINDOW_DAYS = 120
KEY_MEETING = {"Discovery": "discovery", "Demo": "demo", "Proposal": "proposal", "Negotiation": "negotiation"}
MEETING_TITLE = {"discovery": "Discovery call", "demo": f"{vocab.SELLER} demo", "proposal": "Proposal review",
                 "negotiation": "Legal & security review"}
NEXT_MEETING = {"Prospecting": "discovery", "Discovery": "demo", "Demo": "proposal", "Proposal": "proposal",
                "Negotiation": "negotiation"}
AGENDA = {
    "discovery": "Current forecasting process, who is involved, timeline and success criteria.",
    "demo": "Tailored demo of pipeline and forecast views using the team's own reports.",
    "proposal": "Walk through the proposal, pricing options and the business case.",
    "negotiation": "Order form redlines, DPA and the security review.",
}


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def money(amount, currency: str) -> str:
    return f"{currency} {int(amount):,}"


class Story:
    """Writes the book's events. One instance per generated book."""

    def __init__(self, rng: random.Random, book: DemoBook, target_activities: int):
        self.rng = rng
        self.book = book
        self.as_of = book.as_of
        self.window_start = self.as_of - days(WINDOW_DAYS)
        self.target = target_activities
        self.threads = 0
        # (deal, stage) -> (when, index of its "meeting" activity): the meetings that get a transcript.
        self.key_meetings: dict[tuple[int, str], tuple[datetime, int]] = {}

    # ---- low-level writers --------------------------------------------------------------

    def act(self, kind: str, at: datetime, *, contact: int | None = None, deal: int | None = None,
            user: int | None = None, payload: dict | None = None, email: int | None = None,
            meeting: int | None = None) -> int | None:
        """Record one activity, if it falls inside the book's window and after the contact existed."""
        at = whole_seconds(at)
        if at < self.window_start or at > self.as_of:
            return None
        if contact is not None and at < self.book.contacts[contact].created_at:
            return None
        account = self.book.deals[deal].account if deal is not None else (
            self.book.contacts[contact].account if contact is not None else None)
        self.book.activities.append(ActivityRec(type=kind, occurred_at=at, contact=contact, deal=deal, account=account,
                                                user=user, payload=payload or {}, email=email, meeting=meeting))
        return len(self.book.activities) - 1

    def contact_time(self, c: int, lo: datetime, hi: datetime) -> datetime:
        contact = self.book.contacts[c]
        return working_moment(self.rng, max(lo, contact.created_at), hi, contact.utc_offset,
                              start_hour=7, end_hour=21, weekend_share=0.15)

    def rep_time(self, u: int, lo: datetime, hi: datetime) -> datetime:
        user = self.book.users[u]
        return working_moment(self.rng, lo, hi, user.utc_offset, start_hour=user.work_start_hour,
                              end_hour=user.work_end_hour, weekend_share=0.02)

    def facts(self, c: int, u: int, deal: DealRec | None = None) -> texts.Facts:
        contact = self.book.contacts[c]
        company = self.book.accounts[contact.account].name if contact.account is not None else "our team"
        return texts.Facts(
            first=contact.first_name, rep=self.book.users[u].name, company=company,
            product=deal.product if deal else vocab.PRODUCTS["growth"],
            amount=money(deal.amount, deal.currency) if deal else "USD 18,000",
            competitor=deal.competitor if deal and deal.competitor else vocab.COMPETITORS[0],
        )

    def new_thread(self) -> str:
        self.threads += 1
        return f"<thread-{self.book.seed}-{self.threads:05d}@{vocab.SELLER_DOMAIN}>"

    def email(self, thread: str, direction: str, c: int, u: int, deal: int | None, subject: str, body: str,
              at: datetime) -> int | None:
        at = whole_seconds(at)
        if at > self.as_of or at < self.book.contacts[c].created_at or at < self.window_start:
            return None
        rep, person = self.book.users[u].email, self.book.contacts[c].email
        sender, recipient = (rep, person) if direction == "outbound" else (person, rep)
        self.book.emails.append(EmailRec(thread_id=thread, contact=c, deal=deal, direction=direction,
                                         from_address=sender, to_address=recipient, subject=subject, body=body, sent_at=at))
        return len(self.book.emails) - 1

    def send(self, c: int, u: int, deal: int | None, mail: texts.Mail, at: datetime, *, open_p: float,
             reply_body: str | None = None, reply_p: float = 0.0, thread: str | None = None) -> datetime | None:
        """An outbound email with its opens and, maybe, the buyer's reply. Returns when they replied."""
        thread = thread or self.new_thread()
        e = self.email(thread, "outbound", c, u, deal, mail.subject, mail.body, at)
        if e is None:
            return None
        sent = self.book.emails[e]
        self.act("email_sent", sent.sent_at, contact=c, deal=deal, user=u, payload={"subject": mail.subject}, email=e)
        if self.rng.random() >= open_p:
            return None
        opened = whole_seconds(sent.sent_at + timedelta(minutes=self.rng.expovariate(1 / 300)))
        if opened > self.as_of:
            return None
        sent.opened_at = opened
        self.act("email_opened", opened, contact=c, deal=deal, payload={"subject": mail.subject}, email=e)
        if reply_body is None or self.rng.random() >= reply_p:
            return None
        replied = whole_seconds(opened + timedelta(minutes=10 + self.rng.expovariate(1 / 600)))
        subject = mail.subject if mail.subject.startswith("Re:") else f"Re: {mail.subject}"
        r = self.email(thread, "inbound", c, u, deal, subject, reply_body, replied)
        if r is None:
            return None
        sent.replied_at = replied
        self.act("email_replied", replied, contact=c, deal=deal, payload={"subject": subject}, email=r)
        return replied

    def page_view(self, c: int, at: datetime, url: str, *, deal: int | None = None, referrer: str | None = None) -> None:
        base = "/case-studies" if url.startswith("/case-studies/") else ("/blog" if url.startswith("/blog/") else url)
        payload = {"url": url, "title": vocab.PAGE_TITLES.get(base, url.rsplit("/", 1)[-1].replace("-", " ").capitalize()),
                   "duration_s": int(10 + self.rng.expovariate(1 / 70))}
        if referrer:
            payload["referrer"] = referrer
        self.act("page_view", at, contact=c, deal=deal, payload=payload)

    # ---- 1. the sales story of each deal ------------------------------------------------

    def deal_stories(self) -> None:
        for d in range(len(self.book.deals)):
            self.deal_story(d)

    def deal_story(self, d: int) -> None:
        deal = self.book.deals[d]
        p, u = deal.primary_contact, deal.owner
        facts = self.facts(p, u, deal)
        champion = self.book.contacts[p]
        engaged = {"won": 1.0, "lost": 0.6, "open": 0.85}[deal.status] * (0.85 + 0.15 * sigmoid(champion.intent))
        end = deal.closed_at or self.as_of
        self.first_touch_for_deal(d)
        previous = None
        for i, (stage, start) in enumerate(deal.path):
            if stage not in vocab.OPEN_STAGES:
                continue
            seg_end = deal.path[i + 1][1] if i + 1 < len(deal.path) else end
            self.act("stage_change", start, contact=p, deal=d, user=u, payload={"from": previous, "to": stage})
            previous = stage
            active_end = min(seg_end, deal.quiet_from) if deal.quiet_from else seg_end
            if active_end > start:
                self.stage_touches(d, stage, start, active_end, facts, engaged)
            if deal.quiet_from and seg_end > deal.quiet_from:
                self.quiet_touches(d, max(deal.quiet_from, start), seg_end, facts)
        if deal.status != "open":
            self.close_story(d, facts, previous)
        self.decision_maker_story(d)
        self.committee_story(d)

    def first_touch_for_deal(self, d: int) -> None:
        """Inbound champions asked for a demo just before the deal was opened."""
        deal = self.book.deals[d]
        champion = self.book.contacts[deal.primary_contact]
        if champion.source == "outbound":
            return
        lo = max(champion.created_at, deal.opened_at - days(3))
        at = self.contact_time(deal.primary_contact, lo, deal.opened_at)
        self.act("form_submit", at, contact=deal.primary_contact, payload={"form": "demo_request", "url": vocab.FORMS["demo_request"]})

    def stage_touches(self, d: int, stage: str, lo: datetime, hi: datetime, facts: texts.Facts, engaged: float) -> None:
        deal = self.book.deals[d]
        rng, p, u = self.rng, deal.primary_contact, deal.owner
        span = (hi - lo).total_seconds() / 86400
        # The stage's key conversation.
        kind = KEY_MEETING.get(stage)
        meet_at = self.rep_time(u, lo, min(hi, lo + days(min(3.0, span * 0.5))))
        if kind:
            i = self.act("meeting", meet_at, contact=p, deal=d, user=u,
                         payload={"title": f"{MEETING_TITLE[kind]}: {self.book.accounts[deal.account].name}",
                                  "duration_min": rng.choice((30, 45, 60))})
            if i is not None:
                self.key_meetings[(d, stage)] = (meet_at, i)
        else:
            self.call(d, p, u, meet_at, stage, facts, engaged)
        mention = deal.attributes.get("competitor") is not None and rng.random() < 0.55
        self.act("note", meet_at + timedelta(minutes=rng.randint(50, 180)), contact=p, deal=d, user=u,
                 payload={"text": texts.note(rng, stage, facts, mention_competitor=mention or rng.random() < 0.04)})
        # The stage's email thread: the rep writes, the buyer (maybe) answers.
        mood = self.mood(deal.status)
        reply = texts.reply(rng, stage, facts, mood=mood)
        mail = texts.outbound(rng, stage, facts)
        sent_at = self.rep_time(u, min(meet_at + timedelta(hours=2), hi), min(hi, meet_at + days(1.5)))
        thread = self.new_thread()
        replied = self.send(p, u, d, mail, sent_at, open_p=0.55 + 0.4 * engaged, reply_body=reply,
                            reply_p=0.35 + 0.5 * engaged, thread=thread)
        if replied and mood in ("question", "objection") and replied < hi:
            answer = texts.Mail(f"Re: {mail.subject}", texts.answer(rng, facts, mood))
            self.send(p, u, d, answer, self.rep_time(u, replied, min(hi, replied + days(1))), open_p=0.5 + 0.4 * engaged,
                      reply_body=texts.acknowledgement(rng, facts), reply_p=0.5 * engaged, thread=thread)
        # Calls through the stage.
        for _ in range(self.poisson(span / 6)):
            self.call(d, p, u, self.rep_time(u, lo, hi), stage, facts, engaged)
        # What the champion reads while the stage is live.
        pages = {"Prospecting": ["/product", "/integrations"], "Discovery": ["/integrations", "/integrations/salesforce", "/product/forecasting"],
                 "Demo": ["/case-studies/" + rng.choice(vocab.CASE_STUDIES), "/pricing"],
                 "Proposal": ["/security", "/pricing"], "Negotiation": ["/security"]}[stage]
        for _ in range(self.poisson(1.4 * engaged)):
            self.page_view(p, self.contact_time(p, lo, hi), rng.choice(pages), deal=d)
        if stage == "Demo":
            self.pricing_before_demo(d, lo)

    def pricing_before_demo(self, d: int, demo_at: datetime) -> None:
        """Buyers who will buy look at the price before they sit through a demo."""
        deal = self.book.deals[d]
        p_look = {"won": 0.9, "lost": 0.5, "open": 0.75}[deal.status]
        if self.rng.random() >= p_look:
            return
        for _ in range(self.rng.randint(1, 3)):
            at = self.contact_time(deal.primary_contact, demo_at - days(self.rng.uniform(1, 10)), demo_at)
            self.page_view(deal.primary_contact, at, "/pricing", deal=d)

    def call(self, d: int | None, c: int, u: int, at: datetime, stage: str, facts: texts.Facts, engaged: float) -> None:
        outcome = "connected" if self.rng.random() < 0.3 + 0.45 * engaged else self.rng.choice(("voicemail", "no_answer"))
        self.act("call", at, contact=c, deal=d, user=u, payload={
            "outcome": outcome, "duration_s": int(self.rng.uniform(300, 1800)) if outcome == "connected" else int(self.rng.uniform(5, 60)),
            "summary": texts.call_summary(self.rng, outcome, stage, facts)})

    def quiet_touches(self, d: int, lo: datetime, hi: datetime, facts: texts.Facts) -> None:
        """The buyer has gone silent: the rep keeps chasing, almost nothing comes back."""
        deal = self.book.deals[d]
        rng, p, u = self.rng, deal.primary_contact, deal.owner
        at, attempt = lo + days(rng.uniform(2, 5)), 0
        while at < hi:
            if rng.random() < 0.7:
                self.send(p, u, d, texts.chaser(rng, facts, attempt), self.rep_time(u, at, min(hi, at + days(1))), open_p=0.12)
            else:
                self.act("call", self.rep_time(u, at, min(hi, at + days(1))), contact=p, deal=d, user=u,
                         payload={"outcome": rng.choice(("voicemail", "no_answer")), "duration_s": int(rng.uniform(5, 60)),
                                  "summary": texts.call_summary(rng, "voicemail", deal.stage, facts)})
            attempt += 1
            at += days(rng.uniform(4, 9))

    def close_story(self, d: int, facts: texts.Facts, last_open_stage: str | None) -> None:
        deal = self.book.deals[d]
        rng, p, u = self.rng, deal.primary_contact, deal.owner
        closed = deal.closed_at
        won = deal.status == "won"
        if won or (deal.attributes.get("lost_reason") == "chose competitor" and rng.random() < 0.6):
            mail = texts.closing_email(won, facts)
            at = self.contact_time(p, closed - days(1), closed)
            e = self.email(self.new_thread(), "inbound", p, u, d, mail.subject, mail.body, at)
            if e is not None:
                self.act("email_replied", at, contact=p, deal=d, payload={"subject": mail.subject}, email=e)
        self.act("stage_change", closed, contact=p, deal=d, user=u, payload={"from": last_open_stage, "to": deal.stage})
        if won:
            text = f"Closed won: {deal.attributes.get('contract_term_months', 12)}-month contract signed, {money(deal.amount, deal.currency)} per year."
        else:
            reason = deal.attributes.get("lost_reason", "no decision")
            text = f"Closed lost: {reason}." + (f" They went with {deal.attributes['competitor']}." if "competitor" in deal.attributes else "")
        self.act("note", closed + timedelta(minutes=20), contact=p, deal=d, user=u, payload={"text": text})

    def decision_maker_story(self, d: int) -> None:
        """Won deals have a decision maker in the room late in the cycle; lost ones mostly do not."""
        deal = self.book.deals[d]
        rng = self.rng
        dms = [c for c in deal.committee if self.book.contacts[c].is_decision_maker]
        stage_no = [s for s, _ in deal.path if s in vocab.OPEN_STAGES]
        if not dms or len(stage_no) < 3:
            return
        p_engaged = {"won": 0.88, "lost": 0.35, "open": 0.5}[deal.status]
        if rng.random() >= p_engaged:
            return
        dm = dms[0]
        lo = deal.path[2][1]  # from the demo on
        hi = min(deal.closed_at or self.as_of, deal.quiet_from or self.as_of)
        if hi <= lo:
            return
        n = {"won": rng.randint(4, 8), "lost": rng.randint(1, 3), "open": rng.randint(2, 5)}[deal.status]
        key = self.key_meetings.get((d, deal.path[min(3, len(deal.path) - 1)][0])) or self.key_meetings.get((d, "Demo"))
        if key:
            self.act("meeting", key[0], contact=dm, deal=d, user=deal.owner,
                     payload={"title": self.book.activities[key[1]].payload["title"], "duration_min": 45, "role": "decision maker"})
        for _ in range(n):
            what = rng.random()
            at = self.contact_time(dm, lo, hi)
            if what < 0.45:
                self.page_view(dm, at, rng.choice(("/security", "/pricing", "/case-studies/" + rng.choice(vocab.CASE_STUDIES))), deal=d)
            elif what < 0.8:
                self.act("email_opened", at, contact=dm, deal=d, payload={"subject": f"Proposal: {deal.product}"})
            else:
                self.act("content_download", at, contact=dm, deal=d, payload={"asset": "ROI Calculator", "format": "xlsx"})
        if deal.status == "won":
            facts = self.facts(dm, deal.owner, deal)
            mail = texts.Mail("Business case for your CFO", texts.outbound(rng, "Proposal", facts).body)
            self.send(dm, deal.owner, d, mail, self.rep_time(deal.owner, lo, hi), open_p=0.95,
                      reply_body=texts.reply(rng, "Proposal", facts, mood=rng.choice(("positive", "question"))), reply_p=0.7)

    def committee_story(self, d: int) -> None:
        deal = self.book.deals[d]
        hi = min(deal.closed_at or self.as_of, deal.quiet_from or self.as_of)
        for c in deal.committee:
            if self.book.contacts[c].is_decision_maker:
                continue
            for _ in range(self.poisson(1.2 if deal.status != "lost" else 0.5)):
                self.page_view(c, self.contact_time(c, deal.opened_at, hi),
                               self.rng.choice(("/integrations", "/integrations/salesforce", "/docs/getting-started", "/product")), deal=d)

    def mood(self, status: str) -> str:
        weights = {"won": (50, 35, 15, 0), "lost": (20, 25, 45, 10), "open": (40, 35, 25, 0)}[status]
        return self.rng.choices(("positive", "question", "objection", "cold"), weights=weights, k=1)[0]

    def poisson(self, lam: float) -> int:
        # Knuth's method: small means only, exact and deterministic with the book's generator.
        limit, k, prod = math.exp(-lam), 0, self.rng.random()
        while prod > limit:
            k += 1
            prod *= self.rng.random()
        return k

    # ---- 2. marketing, sequences and questions ------------------------------------------

    def contact_end(self, contact: ContactRec) -> datetime:
        if contact.lifecycle_stage == "disqualified" and contact.outcome_at:
            return contact.outcome_at
        return self.as_of

    def quiet_since(self) -> dict[int, datetime]:
        quiet: dict[int, datetime] = {}
        for deal in self.book.deals:
            if deal.quiet_from:
                quiet[deal.primary_contact] = min(quiet.get(deal.primary_contact, deal.quiet_from), deal.quiet_from)
        return quiet

    def marketing(self) -> None:
        rng = self.rng
        quiet = self.quiet_since()
        for c, contact in enumerate(self.book.contacts):
            end = self.contact_end(contact)
            at = contact.created_at + days(rng.uniform(1, 14))
            while at < end:
                campaign = rng.choice(vocab.CAMPAIGNS if contact.lifecycle_stage != "customer" else ("product-update-digest",))
                subject = {"q1-forecasting-launch": "New: forecasting that updates itself",
                           "revops-benchmark-2026": "The 2026 RevOps benchmark is here",
                           "nurture-finance-leaders": "How CFOs read pipeline coverage",
                           "security-trust-series": "Inside our SOC 2 Type II audit",
                           "product-update-digest": f"What's new in {vocab.SELLER} this month",
                           "webinar-invite": f"Live: {rng.choice(vocab.WEBINARS)}"}[campaign]
                sent = working_moment(rng, at, min(end, at + days(1)), contact.utc_offset, start_hour=13, end_hour=16)
                self.act("email_sent", sent, contact=c, payload={"campaign": campaign, "subject": subject})
                dampen = 0.2 if c in quiet and sent >= quiet[c] else 1.0
                if rng.random() < sigmoid(-0.9 + 0.9 * contact.intent) * dampen:
                    opened = sent + timedelta(minutes=rng.expovariate(1 / 240))
                    self.act("email_opened", opened, contact=c, payload={"campaign": campaign})
                    if rng.random() < sigmoid(-1.6 + 0.8 * contact.intent):
                        link = rng.choice(("/pricing", "/blog/" + rng.choice(vocab.BLOG_POSTS), "/webinars", "/case-studies"))
                        self.act("email_clicked", opened + timedelta(minutes=rng.uniform(0.2, 5)), contact=c,
                                 payload={"campaign": campaign, "link": link})
                at += days(rng.uniform(16, 26))

    def first_touches(self) -> None:
        """How each person arrived, recorded at the moment they entered the CRM."""
        rng = self.rng
        for c, contact in enumerate(self.book.contacts):
            at = contact.created_at
            if contact.source == "organic_search":
                self.page_view(c, at, "/blog/" + rng.choice(vocab.BLOG_POSTS), referrer="google")
            elif contact.source == "paid_search":
                self.page_view(c, at, "/lp/revenue-analytics", referrer="google_ads")
            elif contact.source == "outbound":
                continue  # the sequence's first email is the touch
            else:
                form = {"referral": "contact_sales", "webinar": "webinar_registration", "event": "event_badge_scan",
                        "partner": "partner_referral"}[contact.source]
                payload = {"form": form, "url": vocab.FORMS[form]}
                if contact.source == "webinar":
                    payload["webinar"] = contact.attributes.get("webinar")
                if contact.source == "event":
                    payload["event"] = contact.attributes.get("event")
                self.act("form_submit", at, contact=c, payload=payload)

    def sequences(self) -> None:
        """Outbound prospecting sequences to people the reps sourced themselves."""
        rng = self.rng
        in_deals = {d.primary_contact for d in self.book.deals} | {c for d in self.book.deals for c in d.committee}
        for c, contact in enumerate(self.book.contacts):
            if contact.source != "outbound" or contact.owner is None:
                continue
            u = contact.owner
            facts = self.facts(c, u)
            end = self.contact_end(contact)
            at = contact.created_at
            thread = self.new_thread()
            mood = {"disqualified": "cold", "sql": "positive", "mql": "question"}.get(contact.lifecycle_stage)
            for step in range(3):
                mail = texts.sequence_step(step, facts)
                reply = texts.reply(rng, "Prospecting", facts, mood=mood) if mood and c not in in_deals else None
                replied = self.send(c, u, None, mail, self.rep_time(u, at, min(end, at + days(1))),
                                    open_p=sigmoid(-0.3 + 0.9 * contact.intent), reply_body=reply, reply_p=0.5, thread=thread)
                if replied:
                    break
                if rng.random() < 0.25:
                    self.act("linkedin_message", self.rep_time(u, at, min(end, at + days(2))), contact=c, user=u,
                             payload={"text": f"Hi {contact.first_name}, sent you a note about forecasting at {facts.company}."})
                at = next_weekday(at, rng.randint(3, 5))
                if at >= end:
                    break

    def questions(self) -> None:
        """Leads write in with questions; reps answer most of them within a day."""
        rng = self.rng
        in_deals = {d.primary_contact for d in self.book.deals}
        askers = [c for c, x in enumerate(self.book.contacts)
                  if x.lifecycle_stage in ("mql", "sql", "lead") and c not in in_deals and x.owner is not None]
        for c in askers:
            if rng.random() >= 0.07:
                continue
            contact = self.book.contacts[c]
            u = contact.owner
            facts = self.facts(c, u)
            mail = texts.inbound_question(rng, facts)
            at = self.contact_time(c, contact.created_at, self.as_of)
            thread = self.new_thread()
            e = self.email(thread, "inbound", c, u, None, mail.subject, mail.body, at)
            if e is None:
                continue
            self.act("email_replied", at, contact=c, payload={"subject": mail.subject, "unprompted": True}, email=e)
            if rng.random() < 0.75:
                answer = texts.Mail(f"Re: {mail.subject}", texts.answer(rng, facts, "question"))
                self.send(c, u, None, answer, self.rep_time(u, at, min(self.as_of, at + days(1))), open_p=0.8, thread=thread)

    def injection_attempt(self) -> None:
        """One recent inbound email that tries to instruct the agents. It stays unanswered."""
        in_deals = {d.primary_contact for d in self.book.deals}
        candidates = [c for c, x in enumerate(self.book.contacts)
                      if x.lifecycle_stage in ("mql", "lead") and x.account is not None and x.owner is not None
                      and not x.sensitive and c not in in_deals and x.created_at < self.as_of - days(5)]
        c = candidates[len(candidates) // 2] if candidates else 0
        contact = self.book.contacts[c]
        u = contact.owner if contact.owner is not None else 1
        mail = texts.injection_email(self.facts(c, u))
        at = whole_seconds(self.as_of - timedelta(hours=3, minutes=12))
        e = self.email(self.new_thread(), "inbound", c, u, None, mail.subject, mail.body, at)
        if e is not None:
            self.act("email_replied", at, contact=c, payload={"subject": mail.subject, "unprompted": True}, email=e)

    # ---- 3. browsing, downloads and forms from what is left of the budget ---------------

    def browsing(self) -> None:
        rng = self.rng
        budget = max(self.target - len(self.book.activities), self.target // 4)
        quiet = self.quiet_since()
        deal_windows: dict[int, list[tuple[datetime, datetime]]] = {}
        for deal in self.book.deals:
            deal_windows.setdefault(deal.primary_contact, []).append((deal.opened_at, deal.closed_at or self.as_of))
        stage_weight = {"customer": 1.6, "opportunity": 1.4, "sql": 1.3, "mql": 1.0, "lead": 0.6, "disqualified": 0.4}
        plans = []
        for c, contact in enumerate(self.book.contacts):
            segments = self.browsing_segments(c, contact, quiet.get(c))
            length = sum((e - s).total_seconds() / 86400 * w for s, e, w in segments)
            weight = math.exp(0.9 * contact.intent + rng.gauss(0, 0.5)) * stage_weight[contact.lifecycle_stage] * length
            if contact.lifecycle_stage == "disqualified" and rng.random() < 0.12:
                weight *= 4  # tyre-kickers: students, job seekers, competitors reading everything
            plans.append((c, segments, weight))
        total = sum(w for _, _, w in plans) or 1.0
        for c, segments, weight in plans:
            share = budget * weight / total
            n = int(share) + (1 if rng.random() < share - int(share) else 0)
            for _ in range(n):
                bounds = sample_in_segments(rng, segments)
                if bounds is None:
                    break
                at = self.contact_time(c, *bounds)
                self.browse_event(c, at, deal_windows.get(c, []))

    def browsing_segments(self, c: int, contact: ContactRec, quiet_from: datetime | None) -> list[tuple[datetime, datetime, float]]:
        start = max(contact.created_at, self.window_start)
        if contact.lifecycle_stage == "disqualified" and contact.outcome_at:
            # Most people who were turned away stop visiting; a few keep reading the blog.
            return [(start, contact.outcome_at, 1.0), (contact.outcome_at, self.as_of, 0.03)]
        if contact.lifecycle_stage == "customer" and contact.outcome_at:
            return [(start, contact.outcome_at, 1.0), (contact.outcome_at, self.as_of, 0.35)]
        if quiet_from and quiet_from > start:
            return [(start, quiet_from, 1.0), (quiet_from, self.as_of, 0.08)]
        return [(start, self.as_of, 1.0)]

    def browse_event(self, c: int, at: datetime, deal_windows: list[tuple[datetime, datetime]]) -> None:
        rng = self.rng
        contact = self.book.contacts[c]
        in_deal = any(lo <= at <= hi for lo, hi in deal_windows)
        kind = rng.random()
        if kind < 0.08:
            asset, fmt = self.pick_asset(contact.intent)
            self.act("content_download", at, contact=c, payload={"asset": asset, "format": fmt})
            return
        if kind < 0.13:
            high = rng.random() < sigmoid(contact.intent - 1.2)
            form = rng.choice(("contact_sales", "demo_request")) if high else rng.choice(("newsletter", "webinar_registration", "trial_signup"))
            self.act("form_submit", at, contact=c, payload={"form": form, "url": vocab.FORMS[form]})
            return
        if contact.lifecycle_stage == "customer" and contact.outcome_at and at > contact.outcome_at:
            url = rng.choice(("/docs/getting-started", "/integrations/snowflake", "/product/forecasting", "/security"))
        elif rng.random() < sigmoid(1.1 * contact.intent - 0.6 + (0.7 if in_deal else 0.0)):
            url = rng.choices(vocab.HIGH_INTENT_PAGES, weights=(6, 2, 2, 1, 1, 3, 1, 2), k=1)[0]
            if url == "/case-studies":
                url = "/case-studies/" + rng.choice(vocab.CASE_STUDIES)
        else:
            url = rng.choices(("/blog", *vocab.LOW_INTENT_PAGES), weights=(8, 3, 1, 1 + (contact.intent < 0), 2, 1, 1), k=1)[0]
            if url == "/blog":
                url = "/blog/" + rng.choice(vocab.BLOG_POSTS)
        self.page_view(c, at, url)

    def pick_asset(self, intent: float) -> tuple[str, str]:
        if self.rng.random() < sigmoid(intent - 0.5):
            return self.rng.choice((vocab.ASSETS[2], vocab.ASSETS[3], vocab.ASSETS[5], vocab.ASSETS[6]))
        return self.rng.choice((vocab.ASSETS[0], vocab.ASSETS[1], vocab.ASSETS[4]))

    # ---- meetings and tasks -------------------------------------------------------------

    def meetings(self) -> None:
        self.past_meetings()
        self.upcoming_meetings()

    def _meeting_uid(self) -> str:
        return f"demo-{self.book.seed}-{len(self.book.meetings) + 1:03d}@{vocab.SELLER_DOMAIN}"

    def _colleague(self, deal: DealRec) -> int | None:
        dms = [c for c in deal.committee if self.book.contacts[c].is_decision_maker]
        return (dms or deal.committee or [None])[0]

    def past_meetings(self) -> None:
        """Recent key meetings of open deals, with transcripts whose action items are not yet extracted."""
        held = []
        for (d, stage), (at, activity) in self.key_meetings.items():
            deal = self.book.deals[d]
            if deal.status == "open" and deal.stage == stage and deal.quiet_from is None and at + timedelta(hours=1) <= self.as_of:
                if self._colleague(deal) is not None:
                    held.append((at, d, stage, activity))
        held.sort(key=lambda x: (x[0], x[1]), reverse=True)
        for at, d, stage, activity in held[:6]:
            deal = self.book.deals[d]
            p, u, colleague = deal.primary_contact, deal.owner, self._colleague(deal)
            kind = KEY_MEETING[stage]
            person, other = self.book.contacts[p], self.book.contacts[colleague]
            cast = texts.Cast(rep=self.book.users[u].name, buyer=f"{person.first_name} {person.last_name}",
                              colleague=f"{other.first_name} {other.last_name}", colleague_title=other.title or "manager",
                              company=self.book.accounts[deal.account].name, competitor=deal.competitor or vocab.COMPETITORS[0],
                              amount=money(deal.amount, deal.currency))
            minutes = self.book.activities[activity].payload.get("duration_min", 45)
            self.book.meetings.append(MeetingRec(
                uid=self._meeting_uid(), title=self.book.activities[activity].payload["title"], contact=p, deal=d, owner=u,
                starts_at=at, ends_at=at + timedelta(minutes=minutes),
                attendees=[self.book.users[u].email, person.email, other.email], agenda=AGENDA[kind], status="completed",
                transcript=texts.transcript(kind, cast, at), created_by=self.book.users[u].name, created_at=at - days(3)))
            meeting = len(self.book.meetings) - 1
            self.book.activities[activity].meeting = meeting
            # The colleague attended too; the decision-maker story may already have logged it.
            logged = [a for a in self.book.activities
                      if a.type == "meeting" and a.deal == d and a.contact == colleague and a.occurred_at == at]
            if logged:
                logged[0].meeting = meeting
            else:
                self.act("meeting", at, contact=colleague, deal=d, user=u,
                         payload={"title": self.book.activities[activity].payload["title"], "duration_min": minutes},
                         meeting=meeting)

    def upcoming_meetings(self) -> None:
        """Some start within the hour, some tomorrow, a few later this week; none has a brief yet."""
        rng = self.rng
        used = {m.deal for m in self.book.meetings}
        live = [d for d, deal in enumerate(self.book.deals)
                if deal.status == "open" and deal.quiet_from is None and d not in used]
        rng.shuffle(live)
        sensitive = [d for d in live if self.book.accounts[self.book.deals[d].account].sensitive]
        soon = self.as_of.replace(second=0) + timedelta(minutes=5 - self.as_of.minute % 5)
        tomorrow = self.as_of.replace(hour=0, minute=0, second=0) + days(1)
        starts = [soon + timedelta(minutes=20), soon + timedelta(minutes=45),
                  tomorrow + timedelta(hours=14), tomorrow + timedelta(hours=15, minutes=30), tomorrow + timedelta(hours=17),
                  tomorrow + days(2) + timedelta(hours=15), tomorrow + days(3) + timedelta(hours=16)]
        order = live[:]
        if sensitive and sensitive[0] in order:  # one of tomorrow's meetings is with a regulated account
            order.remove(sensitive[0])
            order.insert(min(3, len(order)), sensitive[0])
        for starts_at, d in zip(starts, order, strict=False):
            deal = self.book.deals[d]
            kind = NEXT_MEETING[deal.stage]
            people = [deal.primary_contact] + ([self._colleague(deal)] if self._colleague(deal) is not None and kind != "discovery" else [])
            emails = [self.book.users[deal.owner].email] + [self.book.contacts[c].email for c in people]
            self.book.meetings.append(MeetingRec(
                uid=self._meeting_uid(), title=f"{MEETING_TITLE[kind]}: {self.book.accounts[deal.account].name}",
                contact=deal.primary_contact, deal=d, owner=deal.owner, starts_at=whole_seconds(starts_at),
                ends_at=whole_seconds(starts_at + timedelta(minutes=rng.choice((30, 45, 60)))), attendees=emails,
                agenda=AGENDA[kind], status="scheduled", created_by=self.book.users[deal.owner].name,
                created_at=whole_seconds(self.as_of - days(rng.uniform(1, 6)))))
        # A first call with a new, qualified lead who is not in a deal yet.
        in_deals = {d.primary_contact for d in self.book.deals}
        fresh = [c for c, x in enumerate(self.book.contacts) if x.lifecycle_stage == "sql" and c not in in_deals and x.owner is not None]
        if fresh:
            c = fresh[0]
            contact = self.book.contacts[c]
            starts_at = tomorrow + timedelta(hours=16)
            self.book.meetings.append(MeetingRec(
                uid=self._meeting_uid(), title=f"Intro call: {contact.first_name} {contact.last_name}", contact=c, deal=None,
                owner=contact.owner, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30),
                attendees=[self.book.users[contact.owner].email, contact.email], agenda=AGENDA["discovery"], status="scheduled",
                created_by=self.book.users[contact.owner].name, created_at=whole_seconds(self.as_of - days(1))))

    def tasks(self) -> None:
        rng = self.rng
        titles = {
            "Prospecting": "Map the buying committee at {company}",
            "Discovery": "Send discovery recap and demo agenda to {first}",
            "Demo": "Set up a sandbox for the {company} evaluation",
            "Proposal": "Send revised proposal with a two-year option to {first}",
            "Negotiation": "Chase {company} legal on the order form redlines",
        }
        for d, deal in enumerate(self.book.deals):
            contact = self.book.contacts[deal.primary_contact]
            company = self.book.accounts[deal.account].name
            user = self.book.users[deal.owner]
            if deal.status == "open" and rng.random() < 0.4:
                # Some are overdue, most fall due in the coming days; none before its stage began.
                due = working_moment(rng, max(self.as_of - days(6), deal.stage_entered_at + days(1)), self.as_of + days(10),
                                     user.utc_offset, start_hour=16, end_hour=17)
                latest = min(due, self.as_of)
                created = whole_seconds(deal.stage_entered_at + (latest - deal.stage_entered_at) * rng.uniform(0.1, 0.9))
                self.book.tasks.append(TaskRec(
                    title=titles[deal.stage].format(company=company, first=contact.first_name),
                    description=f"{deal.name}: keep the {deal.stage.lower()} stage moving.", contact=deal.primary_contact,
                    deal=d, owner=deal.owner, due_at=due, status="open", kind="task", created_by=user.name,
                    created_at=created, updated_at=created))
            elif deal.status != "open" and rng.random() < 0.3:
                due = whole_seconds(deal.closed_at - days(rng.uniform(2, 10)))
                self.book.tasks.append(TaskRec(
                    title=f"Follow up with {contact.first_name} on the proposal", contact=deal.primary_contact, deal=d,
                    owner=deal.owner, due_at=due, status="done", kind="follow_up", created_by=user.name,
                    created_at=due - days(3), updated_at=due))
        for c, contact in enumerate(self.book.contacts):
            if contact.lifecycle_stage == "mql" and contact.owner is not None and rng.random() < 0.06:
                user = self.book.users[contact.owner]
                due = working_moment(rng, self.as_of - days(3), self.as_of + days(5), user.utc_offset, start_hour=15, end_hour=17)
                self.book.tasks.append(TaskRec(
                    title=f"Follow up with {contact.first_name} {contact.last_name}",
                    description=f"Came in through {contact.source.replace('_', ' ')}; qualify budget and timeline.",
                    contact=c, owner=contact.owner, due_at=due, status="open", kind="follow_up", created_by=user.name,
                    created_at=whole_seconds(max(contact.created_at, min(due, self.as_of) - days(2))),
                    updated_at=whole_seconds(max(contact.created_at, min(due, self.as_of) - days(2)))))

    # ---- finishing ----------------------------------------------------------------------

    def finish(self) -> None:
        """Time-order the log (ids follow time, like a real event log) and stamp last activity."""
        order = sorted(range(len(self.book.activities)), key=lambda i: (self.book.activities[i].occurred_at, i))
        self.book.activities = [self.book.activities[i] for i in order]
        last: dict[int, datetime] = {}
        for a in self.book.activities:
            if a.contact is not None and (a.contact not in last or a.occurred_at > last[a.contact]):
                last[a.contact] = a.occurred_at
        for c, contact in enumerate(self.book.contacts):
            contact.last_activity_at = last.get(c)
        order = sorted(range(len(self.book.emails)), key=lambda i: (self.book.emails[i].sent_at, i))
        new_index = {old: new for new, old in enumerate(order)}
        self.book.emails = [self.book.emails[i] for i in order]
        for a in self.book.activities:
            if a.email is not None:
                a.email = new_index[a.email]
