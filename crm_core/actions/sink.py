"""Where an outgoing message goes once its outbox row has committed: one `Sink` interface.

`SmtpSink` and `WebhookSink` send for real; `RecordingSink` keeps what it is given, for tests
where the socket is not the point. A unit of work uses one `Sinks` (email, notification), built
once by whoever opens it and attached to its session, the way an httpx client carries its
transport; a session with none attached uses what the settings configure. A missing sink means
the outbox holds the message: it never leaves.
"""
from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from sqlalchemy.orm import Session

from crm_core.models import OutboxMessage
from crm_core.settings import Settings

SMTP_TIMEOUT_S = 30
WEBHOOK_TIMEOUT_S = 10
_SINKS_KEY = "crm_sinks"


class SinkError(Exception):
    """A sink refused or could not be reached; kept on the outbox row as its error."""


@dataclass(frozen=True)
class Outgoing:
    """One message as a sink receives it: a copy of its outbox row, read after the claim committed."""

    id: int
    kind: str                   # email | notification
    recipient: str | None
    subject: str | None
    body: str
    attachments: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of(cls, msg: OutboxMessage) -> Outgoing:
        return cls(id=msg.id, kind=msg.kind, recipient=msg.recipient, subject=msg.subject, body=msg.body or "",
                   attachments=tuple(msg.attachments or ()))


class Sink(Protocol):
    name: str  # stored on the outbox row: smtp | webhook | ...

    def deliver(self, message: Outgoing) -> None:
        """Hand the message over, or raise `SinkError` saying why it could not be."""


def build_email(mail_from: str, message: Outgoing) -> EmailMessage:
    email = EmailMessage()
    email["From"] = mail_from
    email["To"] = message.recipient
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = make_msgid(idstring=f"crm-outbox-{message.id}", domain=mail_from.rpartition("@")[2] or "localhost")
    email.set_content(message.body)
    for att in message.attachments:
        maintype, _, rest = att.get("content_type", "application/octet-stream").partition("/")
        subtype, *param_parts = [p.strip() for p in rest.split(";")]
        params = dict(p.split("=", 1) for p in param_parts if "=" in p)
        content = att.get("content", "")
        if maintype == "text":
            email.add_attachment(content, subtype=subtype, filename=att.get("filename"), params=params)
        else:
            email.add_attachment(content.encode(), maintype=maintype, subtype=subtype, filename=att.get("filename"))
    return email


@dataclass(frozen=True)
class SmtpSink:
    settings: Settings  # host, port, login, STARTTLS and the From address
    name: str = "smtp"

    def deliver(self, message: Outgoing) -> None:
        settings = self.settings
        email = build_email(settings.mail_from, message)
        try:
            with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
                if settings.smtp_starttls:
                    smtp.starttls()
                if settings.smtp_user:
                    smtp.login(settings.smtp_user, settings.smtp_password or "")
                # The envelope recipient is the outbox row's, and only that one.
                smtp.send_message(email, from_addr=settings.mail_from, to_addrs=[message.recipient])
        except (OSError, smtplib.SMTPException) as exc:
            raise SinkError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc


@dataclass(frozen=True)
class WebhookSink:
    """A Slack-compatible incoming webhook: the message as `{"text": ...}`."""

    url: str
    name: str = "webhook"

    def deliver(self, message: Outgoing) -> None:
        text = f"*{message.subject}*\n{message.body}" if message.subject else message.body
        request = urllib.request.Request(self.url, data=json.dumps({"text": text}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
                if not 200 <= response.status < 300:
                    raise SinkError(f"webhook answered HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            raise SinkError(f"webhook answered HTTP {exc.code}: {exc.reason}") from exc
        except (OSError, urllib.error.URLError) as exc:
            raise SinkError(f"webhook unreachable: {exc}") from exc


@dataclass
class RecordingSink:
    """Keeps every message it is given; with `refuse` set it raises that as a `SinkError` instead."""

    name: str = "recording"
    refuse: str | None = None
    delivered: list[Outgoing] = field(default_factory=list)

    def deliver(self, message: Outgoing) -> None:
        if self.refuse is not None:
            raise SinkError(self.refuse)
        self.delivered.append(message)


@dataclass(frozen=True)
class Sinks:
    email: Sink | None = None
    notification: Sink | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Sinks:
        return cls(email=SmtpSink(settings) if settings.smtp_host else None,
                   notification=WebhookSink(settings.webhook_url) if settings.webhook_url else None)

    def for_kind(self, kind: str) -> Sink:
        """The sink a message of this kind goes to; `SinkError` when it has none (the row fails, saying so)."""
        sink = self.email if kind == "email" else self.notification
        if sink is None:
            raise SinkError("no SMTP host configured (CRM_SMTP_HOST)" if kind == "email"
                            else "no webhook configured (CRM_WEBHOOK_URL)")
        return sink


def attach_sinks(session: Session, sinks: Sinks) -> Sinks:
    """Make these the sinks of everything executed in this session (and of what it sends after commit)."""
    session.info[_SINKS_KEY] = sinks
    return sinks


def sinks_for(session: Session, settings: Settings) -> Sinks:
    """The session's sinks; on first use in a session with none attached, the ones the settings configure."""
    found = session.info.get(_SINKS_KEY)
    return found if found is not None else attach_sinks(session, Sinks.from_settings(settings))
