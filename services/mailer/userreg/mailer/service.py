"""The mailer's service layer: one event → its emails → the sender, at most once each.

`Deliverer.deliver(event)` reads the app and its templates (`AppLookup`), composes the emails
(`rules/emails.py`, `variables.py`, `compose.py`), claims them in the delivery log, and hands each
to the `Sender` on a claim sure to outlast the send's start, recording it as sent once accepted.
It raises `TransientFailure` (try again later) or `PermanentFailure` (dead-letter it); the AMQP
edge (`consumer.py`) settles the message accordingly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from email.message import EmailMessage

from userreg.mailer import metrics
from userreg.mailer.app_lookup import AppLookup
from userreg.mailer.compose import MailFrom, build_message, recipient_of
from userreg.mailer.delivery_log import DeliveryLog
from userreg.mailer.envelope import DeadLetterRecord
from userreg.mailer.rules.emails import emails_for
from userreg.mailer.rules.policy import DeliveryFailure, PermanentFailure
from userreg.mailer.sending import Sender
from userreg.mailer.variables import template_context
from userreg.shared.clock import utcnow
from userreg.shared.events import Event
from userreg.shared.templates import TemplateLimitExceeded, TemplateStore

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

    def __init__(
        self, *, apps: AppLookup, templates: TemplateStore, deliveries: DeliveryLog, sender: Sender, mail_from: MailFrom
    ) -> None:
        self._apps = apps
        self._templates = templates
        self._deliveries = deliveries
        self._sender = sender
        self._mail_from = mail_from

    async def deliver(self, event: Event) -> Outcome:
        # aio-pika cancels a consumer's callbacks when the broker connection drops. A delivery cut
        # short there would leave its emails claimed (held back until the claim lapses)
        # or sent but not recorded (sent again then): it runs to its end instead, bounded by the
        # SMTP timeout, and its outcome is in the delivery log for the event's redelivery.
        delivery = asyncio.ensure_future(self._deliver(event))
        try:
            return await asyncio.shield(delivery)
        except asyncio.CancelledError:
            await asyncio.wait({delivery})
            if not delivery.cancelled():
                delivery.exception()  # retrieved: what became of it is recorded, not raised here
            raise

    async def record_dead_letter(self, record: DeadLetterRecord) -> None:
        """Record an event whose message went to the dead-letter queue, for listing and replay."""
        await self._deliveries.record_dead_letter(record)

    async def _deliver(self, event: Event) -> Outcome:
        composed = await self._compose(event)
        if composed is None:
            return Outcome()
        messages = composed.messages
        names = tuple(messages)
        # Hold a connection before claiming: the claim then only has to outlast one bounded send,
        # never a wait for a free connection.
        async with self._sender.connection() as connection:
            claim = await self._deliveries.claim(event.id, event.app_id, names)
            for name in claim.already_sent:
                metrics.DUPLICATES.labels(name).inc()
            pending = list(claim.claimed)
            sent: list[str] = []
            try:
                while pending:
                    name = pending[0]
                    # Only on a claim sure to outlast the send's start (renewals are succeeding).
                    self._deliveries.ensure_claim(event.id, name)
                    started = time.perf_counter()
                    await connection.send(messages[name], mail_from=self._mail_from.address, rcpt_to=composed.recipient)
                    metrics.SEND_SECONDS.observe(time.perf_counter() - started)
                    pending.pop(0)
                    await self._deliveries.mark_sent(event.id, name)
                    sent.append(name)
                    metrics.SENT.labels(name).inc()
                    metrics.EVENT_TO_SENT_SECONDS.observe((utcnow() - event.occurred_at).total_seconds())
                    logger.info("sent %s email for event %s of app %s", name, event.id, event.app_id)
            except DeliveryFailure as failure:
                await self._deliveries.release(event.id, tuple(pending), failure.reason)
                raise
            except BaseException:
                # Cancelled or a bug mid-send: whether the server took the email is unknown. Its
                # claim is no longer renewed and lapses; the event's redelivery tries again then.
                self._deliveries.let_lapse(event.id, tuple(pending))
                raise
        return Outcome(sent=tuple(sent), already_sent=claim.already_sent, busy=claim.busy)

    async def _compose(self, event: Event) -> Composed | None:
        """The event's emails, rendered; None when it causes none."""
        app, sources = await self._apps.sources(
            event.app_id,
            lambda app: emails_for(event, welcome_email_enabled=app.welcome_email_enabled),
            event.user.locale,
        )
        if not sources:
            return None
        # An email-change link goes to the new address, which the user does not have yet.
        recipient = recipient_of(
            event.user if event.new_email is None else event.user.model_copy(update={"email": event.new_email})
        )
        if recipient is None:
            logger.info("event %s of app %s: the user has no email address, nothing to send", event.id, event.app_id)
            return None
        context = template_context(event, app_name=app.name)
        messages: dict[str, EmailMessage] = {}
        for name, source in sources.items():
            try:
                # Within TEMPLATE_RENDER_SECONDS and TEMPLATE_OUTPUT_BYTES, or TemplateLimitExceeded.
                rendered = self._templates.render_email(source, context)
            except TemplateLimitExceeded as error:
                self._apps.forget(app.app_id)
                raise PermanentFailure(
                    "template", f"the {name} template of app {app.app_id} breaks a render limit: {error.reason}"
                ) from error
            except Exception as error:  # an operator's template may fail in any way; it is data, not code
                self._apps.forget(app.app_id)
                raise PermanentFailure(
                    "template",
                    f"the {name} template of app {app.app_id} cannot be rendered: {type(error).__name__}: {error}",
                ) from error
            messages[name] = build_message(
                rendered, event_id=event.id, template=name, mail_from=self._mail_from, to=recipient
            )
        return Composed(recipient=recipient.address, messages=messages)
