"""The userreg mailer: turns `user.registered` and `user.confirmation_requested` events into
confirmation and welcome emails, `user.password_reset_requested` into the password-reset email and
`user.password_changed` into the "your password was changed" notice (docs/api.md: Sessions and password
recovery, Events, Emails), at most once each, never silently lost.

    __main__.py      `userreg-mailer`: settings, logging, `web.run_app(create_app(settings))`
    app.py           the composition root: `create_app(settings, *, sender=None)`, /health, /ready, /metrics
    keys.py          the typed `web.AppKey`s the application holds
    consumer.py      the AMQP edge: settles each message once its fate is safe with the broker
    envelope.py      the messages between the queues: the event, retry headers, copies for delay and DLQ
    service.py       the service layer: one event → its emails → the sender (claims, sends, records)
    app_lookup.py    the app and its template sources, through a short-lived cache
    delivery_log.py  claims on emails as leases (heartbeat, the check before a send), sent records
    repository.py    all SQL: apps, delivery records, dead-letter rows, retention deletes
    sending.py       the `Sender` protocol, and `RecordingSender`, a fake that keeps what it is given
    smtp.py          the SMTP sender: a small pool of reused aiosmtplib connections
    compose.py       the MIME message: recipient, From, Message-ID, multipart/alternative (no I/O)
    headers.py       which values may reach a mail header, and the header registry (no I/O)
    variables.py     the variables an email template sees (no I/O)
    rules/           pure rules: failures and delays (policy), leases, which emails, redaction
    dead_letters.py  `userreg dead-letters list|replay`: list and replay what the DLQ holds
    retention.py     the hourly pruning of old records, ended sessions and expired reset links
    metrics.py       the Prometheus metrics
    operations.py    what the admin command may use: dead letters, template variables

The local inbox (`userreg-inbox`) is a separate distribution, `tools/inbox` (`userreg.inbox`).
"""
