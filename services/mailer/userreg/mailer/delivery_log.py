"""The delivery log: a mailer's claims on the emails it sends, kept as leases, and the record that
each was sent, so that every email goes out at most once however often its event arrives. The SQL
is `repository.py`'s; the rules of leases are `rules/leases.py`'s."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.mailer import repository
from userreg.mailer.envelope import DeadLetterRecord
from userreg.mailer.rules.leases import (
    Claim,
    ClaimRequest,
    DeliveryKey,
    claims_of,
    may_start_send,
    renewal_interval,
    rows_to_claim,
)
from userreg.mailer.rules.policy import DATABASE, TransientFailure
from userreg.shared.batching import Batcher
from userreg.shared.db.errors import RETRYABLE_DATABASE_ERRORS

logger = logging.getLogger(__name__)

# Recording that the SMTP server accepted an email: a few quick tries while the event waits, then
# in the background while the event is settled anyway (the email went out; sending it again would
# be the worse mistake), with its claim renewed meanwhile, until it is recorded or the mailer stops.
MARK_SENT_RETRIES = (0.1, 0.5, 1.0)
MARK_SENT_BACKGROUND_PAUSE = 5.0
# After a failed renewal of the claims, the next try comes this soon (at most a renewal interval).
RENEW_RETRY_SECONDS = 1.0


class DeliveryLog:
    """Delivery records in `mail_deliveries`, one per (event id, template).

    A mailer claims an email before sending it. The claim is a lease of `claim_seconds`
    (MAILER_CLAIM_SECONDS) that a heartbeat renews every third of it while the mailer holds the
    email (until it is recorded as sent, or released): a live claimant never loses it, a crashed
    one's lapses within one lease. The database's clock decides expiry: the same for every replica.
    Before each send `ensure_claim` checks that the lease was set recently enough to outlast the
    send's start, so a mailer cut off from the database stops sending rather than sending on a
    claim another mailer may take. `owner` names this process's claims: unique per process.
    Claims and "sent" records of concurrent emails are batched into one statement each.
    """

    def __init__(self, engine: AsyncEngine, owner: str, claim_seconds: float) -> None:
        # Every statement here is atomic on its own: an AUTOCOMMIT engine saves BEGIN/COMMIT round trips.
        self._engine = engine
        self._owner = owner[:100]
        self._claim_seconds = claim_seconds
        self._claims: Batcher[ClaimRequest, Claim] = Batcher(self._claim_batch)
        self._sent: Batcher[DeliveryKey, None] = Batcher(self._mark_sent_batch)
        self._recording: set[asyncio.Task] = set()
        # The claims this mailer holds, each with the monotonic time its lease was last set from
        # (taken before the statement that set it, which the database dated later).
        self._held: dict[DeliveryKey, float] = {}
        # Sent by this mailer, the record not yet written (`_record_later`): never sent again here.
        self._unrecorded: set[DeliveryKey] = set()
        self._heartbeat: asyncio.Task | None = None

    async def claim(self, event_id: str, app_id: str, templates: tuple[str, ...]) -> Claim:
        try:
            claim = await self._claims((event_id, app_id, templates))
        except RETRYABLE_DATABASE_ERRORS as error:
            raise TransientFailure(DATABASE, f"cannot claim the delivery: {type(error).__name__}") from error
        # Held (and renewed) only once handed to a caller that is there to send.
        for template in claim.claimed:
            key = (event_id, template)
            self._held[key] = max(self._held.get(key, claim.since), claim.since)
        # Our own claim that lapsed while the database was away, on an email we sent: still sent.
        sent_here = tuple(template for template in claim.claimed if (event_id, template) in self._unrecorded)
        if sent_here:
            claim = Claim(
                claimed=tuple(template for template in claim.claimed if template not in sent_here),
                already_sent=claim.already_sent + sent_here,
                busy=claim.busy,
                since=claim.since,
            )
        if self._held and (self._heartbeat is None or self._heartbeat.done()):
            self._heartbeat = asyncio.create_task(self._renew_periodically(), name="mail-claims-heartbeat")
        return claim

    def ensure_claim(self, event_id: str, template: str) -> None:
        """Return if a send of the email may start now: we hold its claim and its lease was set
        recently enough (`leases.may_start_send`). Otherwise raise `TransientFailure("database")`:
        renewals have been failing, and the claim might lapse (and another mailer take the email)
        while we send."""
        since = self._held.get((event_id, template))
        if since is None:
            raise TransientFailure(DATABASE, f"the claim on the {template} email is not held")
        renewed_ago = time.monotonic() - since
        if not may_start_send(renewed_ago, self._claim_seconds):
            raise TransientFailure(
                DATABASE,
                f"the claim on the {template} email was last renewed "
                f"{renewed_ago:.1f}s ago (lease {self._claim_seconds:g}s): "
                f"not sending on it",
            )

    def let_lapse(self, event_id: str, templates: tuple[str, ...]) -> None:
        """Stop renewing these claims (what became of their sends is unknown): each lapses within
        one lease, and a later delivery of the event claims the email again."""
        for template in templates:
            self._held.pop((event_id, template), None)

    async def _renew_periodically(self) -> None:
        pause = renewal_interval(self._claim_seconds)
        failing = False
        while True:
            await asyncio.sleep(pause)
            pause = renewal_interval(self._claim_seconds)
            if not self._held:
                continue
            try:
                await self.renew()
            except RETRYABLE_DATABASE_ERRORS as error:
                pause = min(RENEW_RETRY_SECONDS, pause)
                if not failing:
                    logger.warning(
                        "cannot renew the claims on %d email(s) (%s); no send starts on them until a renewal succeeds",
                        len(self._held),
                        type(error).__name__,
                    )
                failing = True
                continue
            except Exception:  # the heartbeat must outlive anything; a bug here is logged, not fatal
                pause = min(RENEW_RETRY_SECONDS, pause)
                logger.exception("renewing the claims failed")
                continue
            if failing:
                logger.info("the claims are renewed again")
            failing = False

    async def renew(self) -> None:
        """Renew the lease of every claim held now, in one statement (the heartbeat calls this
        every `leases.renewal_interval`). A claim that is no longer ours (it lapsed and another
        mailer took it) is not renewed, so `ensure_claim` refuses to send on it."""
        held = sorted(self._held)
        if not held:
            return
        renewed, started = await repository.renew_claims(
            self._engine, held, owner=self._owner, claim_seconds=self._claim_seconds
        )
        for key in renewed:
            if key in self._held:
                self._held[key] = max(self._held[key], started)
        # Not ours any more (lapsed, and another mailer took it): never renewed or sent on again
        # (unless claimed anew meanwhile).
        lost = [key for key in held if key not in renewed and self._held.get(key, started + 1) <= started]
        for key in lost:
            del self._held[key]
        if lost:
            logger.warning(
                "the claims on %s lapsed and are no longer ours; not sending on them",
                ", ".join(f"{event_id}/{template}" for event_id, template in lost),
            )

    async def _claim_batch(self, requests: list[ClaimRequest]) -> list[Claim]:
        rows = await repository.claim_deliveries(
            self._engine, rows_to_claim(requests), owner=self._owner, claim_seconds=self._claim_seconds
        )
        return claims_of(requests, rows.claimed, rows.statuses, rows.started)

    async def mark_sent(self, event_id: str, template: str) -> None:
        """Record that the SMTP server accepted the email. Never fails: when the database stays away,
        recording goes on in the background, its claim held and renewed meanwhile (keeping other
        mailers off the email), until it is recorded or the mailer stops."""
        try:
            for pause in MARK_SENT_RETRIES:
                try:
                    await self._sent((event_id, template))
                    self._held.pop((event_id, template), None)
                    return
                except RETRYABLE_DATABASE_ERRORS as error:
                    logger.warning(
                        "recording the sent email %s/%s failed (%s); retrying in %ss",
                        event_id,
                        template,
                        type(error).__name__,
                        pause,
                    )
                    await asyncio.sleep(pause)
        except asyncio.CancelledError:
            self._record_in_background(event_id, template)  # its claim must not stay held for ever
            raise
        self._record_in_background(event_id, template)

    def _record_in_background(self, event_id: str, template: str) -> None:
        self._unrecorded.add((event_id, template))
        task = asyncio.create_task(self._record_later(event_id, template))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _record_later(self, event_id: str, template: str) -> None:
        try:
            while True:
                try:
                    await self._sent((event_id, template))
                except RETRYABLE_DATABASE_ERRORS:
                    await asyncio.sleep(min(MARK_SENT_BACKGROUND_PAUSE, renewal_interval(self._claim_seconds)))
                    continue
                self._held.pop((event_id, template), None)
                self._unrecorded.discard((event_id, template))
                logger.info("the sent email %s/%s is recorded at last", event_id, template)
                return
        except asyncio.CancelledError:
            logger.error(
                "the sent email %s/%s could not be recorded before the mailer stopped; a "
                "redelivered copy of its event may send it again",
                event_id,
                template,
            )
            raise

    async def close(self, grace: float = 5.0) -> None:
        """Give records still being retried a last chance, then stop renewing claims."""
        if self._recording:
            _, late = await asyncio.wait(set(self._recording), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            await asyncio.wait({heartbeat})

    async def _mark_sent_batch(self, keys: list[DeliveryKey]) -> list[None]:
        await repository.mark_sent(self._engine, sorted(set(keys)))
        return [None] * len(keys)

    async def release(self, event_id: str, templates: tuple[str, ...], reason: str) -> None:
        """Give up our claim after a failed attempt, so the next delivery of the event may claim it
        at once. Best effort: if this fails too, the claim is no longer renewed and lapses within
        one lease."""
        if not templates:
            return
        self.let_lapse(event_id, templates)
        try:
            await repository.release_claims(self._engine, event_id, templates, owner=self._owner, reason=reason)
        except RETRYABLE_DATABASE_ERRORS as error:
            logger.warning("cannot release the claim on %s (%s); it lapses by itself", event_id, type(error).__name__)

    async def record_dead_letter(self, record: DeadLetterRecord) -> None:
        """Record an event that was dead-lettered (for `userreg dead-letters list`)."""
        await repository.record_dead_letter(self._engine, record)
