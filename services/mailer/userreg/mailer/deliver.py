"""Turning one event into its emails and handing them to the SMTP server, at most once each."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.mailer import metrics
from userreg.mailer.compose import (
    Sender,
    build_message,
    emails_for,
    recipient_of,
    template_context,
)
from userreg.mailer.deliveries import DATABASE_ERRORS, AppInfo, DeliveryLog, load_app
from userreg.mailer.policy import DeliveryFailure, PermanentFailure, TransientFailure
from userreg.mailer.smtp import SmtpPool
from userreg.shared.events import Event
from userreg.shared.templates import TemplateLimitExceeded, TemplateSource, TemplateStore, pick_locale

logger = logging.getLogger(__name__)


# How long an app's settings and templates are reused before they are read again. Most events of a
# busy mailer belong to a few apps; reading both for every email was most of its database work.
# An operator's change (a template override, the welcome email switched on) takes effect within this
# time, without a restart.
APP_CACHE_SECONDS = 2.0
APP_CACHE_SIZE = 1000


@dataclass
class _AppEntry:
    app: AppInfo
    sources: dict[tuple[str, str], TemplateSource]
    expires: float


class AppLookup:
    """The app an event belongs to and the template sources it uses, through a short-lived cache."""

    def __init__(self, sessions: async_sessionmaker, templates: TemplateStore,
                 ttl: float = APP_CACHE_SECONDS) -> None:
        self._sessions = sessions
        self._templates = templates
        self._ttl = ttl
        self._entries: dict[str, _AppEntry] = {}

    async def sources(self, app_id: str, names: Callable[[AppInfo], tuple[str, ...]],
                      locale: str | None) -> tuple[AppInfo, dict[str, TemplateSource]]:
        """The app and the sources of the templates `names(app)` picks; `PermanentFailure` for an
        app that does not exist, `TransientFailure` when the database cannot be read."""
        locale = pick_locale(locale)
        now = time.monotonic()
        entry = self._entries.get(app_id)
        if entry is not None and entry.expires < now:
            entry = None
        try:
            if entry is None:
                entry = await self._load_app(app_id, now)
            wanted = names(entry.app)
            missing = [name for name in wanted if (name, locale) not in entry.sources]
            if missing:
                async with self._sessions() as session:
                    for name in missing:
                        source = await self._templates.source(session, app_id, name, locale)
                        entry.sources[(name, locale)] = source
        except DATABASE_ERRORS as error:
            raise TransientFailure("database", f"cannot read the app or its templates: "
                                               f"{type(error).__name__}") from error
        return entry.app, {name: entry.sources[(name, locale)] for name in wanted}

    def forget(self, app_id: str) -> None:
        """Read the app anew next time (after its template failed: the operator's fix and replay
        must not meet the broken copy)."""
        self._entries.pop(app_id, None)

    async def _load_app(self, app_id: str, now: float) -> _AppEntry:
        async with self._sessions() as session:
            app = await load_app(session, app_id)
        if app is None:
            raise PermanentFailure("unknown_app", f"app {app_id} does not exist")
        if len(self._entries) >= APP_CACHE_SIZE:
            self._entries = {key: value for key, value in self._entries.items() if value.expires >= now}
        entry = self._entries[app_id] = _AppEntry(app=app, sources={}, expires=now + self._ttl)
        return entry


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

    def __init__(self, *, apps: AppLookup, templates: TemplateStore, deliveries: DeliveryLog,
                 smtp: SmtpPool, sender: Sender) -> None:
        self._apps = apps
        self._templates = templates
        self._deliveries = deliveries
        self._smtp = smtp
        self._sender = sender

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

    async def _deliver(self, event: Event) -> Outcome:
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
                    # Only on a claim sure to outlast the send's start (renewals are succeeding).
                    self._deliveries.ensure_claim(event.id, name)
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
            except BaseException:
                # Cancelled or a bug mid-send: whether the server took the email is unknown. Its
                # claim is no longer renewed and lapses; the event's redelivery tries again then.
                self._deliveries.let_lapse(event.id, tuple(pending))
                raise
        return Outcome(sent=tuple(sent), already_sent=claim.already_sent, busy=claim.busy)

    async def _compose(self, event: Event) -> Composed | None:
        """The event's emails, rendered; None when it causes none."""
        app, sources = await self._apps.sources(
            event.app_id, lambda app: emails_for(event, welcome_email_enabled=app.welcome_email_enabled),
            event.user.locale)
        if not sources:
            return None
        recipient = recipient_of(event.user)
        if recipient is None:
            logger.info("event %s of app %s: the user has no email address, nothing to send",
                        event.id, event.app_id)
            return None
        context = template_context(event, app_name=app.name)
        messages: dict[str, EmailMessage] = {}
        for name, source in sources.items():
            try:
                # Within TEMPLATE_RENDER_SECONDS and TEMPLATE_OUTPUT_BYTES, or TemplateLimitExceeded.
                rendered = self._templates.render_email(source, context)
            except TemplateLimitExceeded as error:
                self._apps.forget(app.app_id)
                raise PermanentFailure("template", f"the {name} template of app {app.app_id} breaks a "
                                                   f"render limit: {error.reason}") from error
            except Exception as error:  # an operator's template may fail in any way; it is data, not code
                self._apps.forget(app.app_id)
                raise PermanentFailure("template", f"the {name} template of app {app.app_id} cannot be "
                                                   f"rendered: {type(error).__name__}: {error}") from error
            messages[name] = build_message(rendered, event_id=event.id, template=name, sender=self._sender,
                                           to=recipient)
        return Composed(recipient=recipient.address, messages=messages)
