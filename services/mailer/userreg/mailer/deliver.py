"""Turning one event into its emails and handing them to the SMTP server, at most once each."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.mailer import metrics
from userreg.mailer.compose import (
    Sender,
    build_message,
    emails_for,
    recipient_of,
    template_context,
)
from userreg.mailer.deliveries import DeliveryLog, load_app
from userreg.mailer.policy import DeliveryFailure, PermanentFailure, TransientFailure
from userreg.mailer.smtp import SmtpPool
from userreg.shared.events import Event
from userreg.shared.templates import TemplateStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Composed:
    recipient: str
    # By template name, in sending order.
    messages: dict[str, EmailMessage]


@dataclass(frozen=True)
class Outcome:
    sent: tuple[str, ...] = ()
    already_sent: tuple[str, ...] = ()
    # Being sent by another mailer right now: look again later.
    busy: tuple[str, ...] = ()


class Deliverer:
    """Sends the emails an event causes. Raises `TransientFailure` (try again later) or
    `PermanentFailure` (dead-letter it); returns what happened otherwise."""

    def __init__(self, *, sessions: async_sessionmaker, templates: TemplateStore, deliveries: DeliveryLog,
                 smtp: SmtpPool, sender: Sender) -> None:
        self._sessions = sessions
        self._templates = templates
        self._deliveries = deliveries
        self._smtp = smtp
        self._sender = sender

    async def deliver(self, event: Event) -> Outcome:
        composed = await self._compose(event)
        if composed is None:
            return Outcome()
        messages = composed.messages
        names = tuple(messages)
        # Hold an SMTP session before claiming: the claim then only has to outlast one bounded send,
        # never a wait for a free session.
        async with self._smtp.connection() as smtp:
            claim = await self._deliveries.claim(event.id, event.app_id, names)
            for name in claim.already_sent:
                metrics.DUPLICATES.labels(name).inc()
            pending = list(claim.claimed)
            sent: list[str] = []
            try:
                while pending:
                    name = pending[0]
                    started = time.perf_counter()
                    await smtp.send(messages[name], sender=self._sender.address, recipient=composed.recipient)
                    metrics.SEND_SECONDS.observe(time.perf_counter() - started)
                    pending.pop(0)
                    await self._deliveries.mark_sent(event.id, name)
                    sent.append(name)
                    metrics.SENT.labels(name).inc()
                    metrics.EVENT_TO_SENT_SECONDS.observe(
                        (datetime.now(timezone.utc) - event.occurred_at).total_seconds())
                    logger.info("sent %s email for event %s of app %s", name, event.id, event.app_id)
            except DeliveryFailure as failure:
                await self._deliveries.release(event.id, tuple(pending), failure.reason)
                raise
        return Outcome(sent=tuple(sent), already_sent=claim.already_sent, busy=claim.busy)

    async def _compose(self, event: Event) -> Composed | None:
        """The event's emails, rendered; None when it causes none."""
        try:
            async with self._sessions() as session:
                app = await load_app(session, event.app_id)
                if app is None:
                    raise PermanentFailure("unknown_app", f"app {event.app_id} does not exist")
                names = emails_for(event, welcome_email_enabled=app.welcome_email_enabled)
                if not names:
                    return None
                recipient = recipient_of(event.user)
                if recipient is None:
                    logger.info("event %s of app %s: the user has no email address, nothing to send",
                                event.id, event.app_id)
                    return None
                sources = {name: await self._templates.source(session, app.app_id, name, event.user.locale)
                           for name in names}
        except (SQLAlchemyError, OSError) as error:
            raise TransientFailure("database", f"cannot read the app or its templates: "
                                               f"{type(error).__name__}") from error
        context = template_context(event, app_name=app.name)
        messages: dict[str, EmailMessage] = {}
        for name, source in sources.items():
            try:
                rendered = self._templates.render_email(source, context)
            except Exception as error:  # an operator's template may fail in any way; it is data, not code
                raise PermanentFailure("template", f"the {name} template of app {app.app_id} cannot be "
                                                   f"rendered: {type(error).__name__}: {error}") from error
            messages[name] = build_message(rendered, event_id=event.id, template=name, sender=self._sender,
                                           to=recipient)
        return Composed(recipient=recipient.address, messages=messages)
