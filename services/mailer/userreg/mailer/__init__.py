"""The userreg mailer: turns `user.registered` and `user.confirmation_requested` events into
confirmation and welcome emails (SPEC §4–§5), at most once each, never silently lost.

    consumer.py      the AMQP edge: settles each message once its fate is safe with the broker
    deliver.py       one event → its emails → the SMTP server (claims, sends, records)
    compose.py       which emails, template variables, the MIME message (no I/O)
    policy.py        transient or permanent, retry delays (no I/O)
    smtp.py          a small pool of reused aiosmtplib connections
    deliveries.py    delivery records (claims) in PostgreSQL, batched
    dead_letters.py  the dead-letter queue and table; list and replay for `userreg dead-letters`
    web.py           `create_app(settings)`: the consumer plus /health, /ready, /metrics
    inbox.py         `userreg-inbox`, the local SMTP server with a web page and a JSON API
"""
