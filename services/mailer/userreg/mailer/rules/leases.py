"""Claims as leases. A mailer's claim on an email lasts MAILER_CLAIM_SECONDS from the last
statement that set it (the claim, then each renewal); the database's clock decides, the same for
every replica. No I/O: when to renew, whether a send may start, and what claiming a batch gave."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from userreg.shared.db.mail import DeliveryStatus

DeliveryKey = tuple[str, str]  # (event id, template)
ClaimRequest = tuple[str, str, tuple[str, ...]]  # (event id, app id, templates)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an event's emails: ours to send now, sent before, or being sent
    right now by another mailer (whose claim has not expired)."""

    claimed: tuple[str, ...]
    already_sent: tuple[str, ...]
    busy: tuple[str, ...]
    # When the lease of the claimed ones was set from (monotonic, before the claiming statement).
    since: float = 0.0


def renewal_interval(lease: float) -> float:
    """How often a live mailer renews its claims: three times per lease, so a renewal may fail (or
    be slow) once without any claim running short, while a crashed mailer's claims lapse at most
    one lease after its last renewal."""
    return lease / 3


def may_start_send(renewed_ago: float, lease: float) -> bool:
    """Whether a send may start on a claim whose lease was last set `renewed_ago` seconds ago
    (counted from before the statement that set it, so never too little): only while at least half
    the lease is left. The claim then outlasts the start of the send (and, with the defaults, any
    server that answers within 7.5 s) even if no renewal succeeds any more; a mailer that cannot
    renew (the database is away from it) starts no send at all."""
    return renewed_ago <= lease / 2


def rows_to_claim(requests: Iterable[ClaimRequest]) -> dict[DeliveryKey, str]:
    """The delivery rows a batch of claim requests touches, each once (with its app id), sorted:
    one statement must not touch a row twice, and concurrent batches of several mailers take their
    row locks in the same order."""
    first: dict[DeliveryKey, str] = {}
    for event_id, app_id, templates in requests:
        for template in templates:
            first.setdefault((event_id, template), app_id)
    return {key: first[key] for key in sorted(first)}


def claims_of(
    requests: Sequence[ClaimRequest], claimed: set[DeliveryKey], statuses: dict[DeliveryKey, str], since: float
) -> list[Claim]:
    """Each request's `Claim`, from the rows the batch claimed and the statuses of the others: a
    row not claimed is sent when its status says so, busy otherwise. Two copies of one event in
    the same batch: the first claims, the second finds it busy. (Consumes `claimed`.)"""
    results = []
    for event_id, _, templates in requests:
        ours: list[str] = []
        sent: list[str] = []
        busy: list[str] = []
        for template in templates:
            key = (event_id, template)
            if key in claimed:
                claimed.remove(key)  # a second copy of the event in this batch finds it busy
                ours.append(template)
            elif statuses.get(key) == DeliveryStatus.SENT.value:
                sent.append(template)
            else:
                busy.append(template)
        results.append(Claim(claimed=tuple(ours), already_sent=tuple(sent), busy=tuple(busy), since=since))
    return results
