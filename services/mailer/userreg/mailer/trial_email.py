"""A trial email, outside of any event: the console's "send a test email" of an app's template. It is
composed as the mailer composes every email (`compose`: the same From, To, Subject, Message-ID
and multipart/alternative body) and handed to the configured SMTP server through one session of
`smtp.SmtpPool`, so a test email reaches an inbox exactly the way a real one would, or fails with
the reason a real one would (`DeliveryFailure`)."""

from __future__ import annotations

from userreg.mailer.compose import build_message, parse_mail_from, recipient_of
from userreg.mailer.rules.policy import PermanentFailure
from userreg.mailer.smtp import SmtpPool
from userreg.shared.events import EventUser
from userreg.shared.settings import Settings
from userreg.shared.templates import RenderedEmail
from userreg.shared.tokens import new_guid

# The Message-ID names the template with this prefix: a receiver can tell a test from a real email.
TEST_PREFIX = "test-"


async def send_test_email(settings: Settings, rendered: RenderedEmail, *, to: str, template: str) -> str:
    """Send the rendered email to `to`; returns the address it went to (normalised). Raises
    `PermanentFailure` for an address that is none, or the SMTP server's refusal, and
    `TransientFailure` when the server cannot be reached or answers 4xx."""
    address = to.strip()
    recipient = recipient_of(
        EventUser(object_id=new_guid(), identity_property="email", identity=address, email=address)
    )
    if recipient is None:
        raise PermanentFailure("invalid_recipient", "no recipient address given")
    mail_from = parse_mail_from(settings.mail_from)
    message = build_message(
        rendered, event_id=new_guid().lower(), template=TEST_PREFIX + template, mail_from=mail_from, to=recipient
    )
    pool = SmtpPool(settings, size=1)
    try:
        async with pool.connection() as connection:
            await connection.send(message, mail_from=mail_from.address, rcpt_to=recipient.address)
    finally:
        await pool.close()
    return recipient.address
