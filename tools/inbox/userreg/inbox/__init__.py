"""The local inbox, for development and tests (not part of a production system): an SMTP server
that keeps what it receives in memory, with a small web page to read it and a JSON API for tests.

    userreg-inbox                  SMTP on INBOX_SMTP_PORT (1025), web on INBOX_HTTP_PORT (8025)

JSON API:  GET /api/messages[?to=ADDRESS]   summaries, oldest first
           GET /api/messages/{id}           one message: headers, text and HTML parts, raw source
           DELETE /api/messages             forget everything

In a test, `Inbox(smtp_port=0, http_port=None)` runs in the test's own event loop; `fail_next()`
and `reject_recipient()` make it answer like a mail server that has trouble.

    server.py     `Inbox`: the SMTP server, its messages and (optionally) its web page, started together
    smtp.py       the aiosmtpd side: sessions the inbox can hang up on, faults on demand, AUTH
    store.py      the messages received, oldest first, and waiting for them
    web.py        the web page and the JSON API
    __main__.py   `userreg-inbox`: run it until SIGINT/SIGTERM
"""

from userreg.inbox.server import Inbox
from userreg.inbox.store import ReceivedMessage

__all__ = ["Inbox", "ReceivedMessage"]
