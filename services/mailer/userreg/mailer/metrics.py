"""The mailer's Prometheus metrics, served on `/metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "userreg_mailer_events_total", "Events the mailer settled, by what became of them", ["outcome"]
)  # sent, duplicate, nothing_to_send, deferred, retried, dead_lettered
SENT = Counter("userreg_mailer_sent_total", "Emails the SMTP server accepted", ["template"])
DUPLICATES = Counter(
    "userreg_mailer_duplicates_total",
    "Emails not sent again because an earlier delivery of their event sent them",
    ["template"],
)
RETRIED = Counter("userreg_mailer_retried_total", "Events put into a delay queue after a transient failure", ["kind"])
DEFERRED = Counter(
    "userreg_mailer_deferred_total", "Events put back for later because another mailer was sending their email"
)
DEAD_LETTERED = Counter("userreg_mailer_dead_lettered_total", "Events parked in the dead-letter queue", ["kind"])
SEND_SECONDS = Histogram(
    "userreg_mailer_send_seconds",
    "Time the SMTP server took to accept one email",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENT_TO_SENT_SECONDS = Histogram(
    "userreg_mailer_event_to_sent_seconds",
    "Time from an event to its email being accepted by the SMTP server",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
)
