"""The database away for longer than the whole retry ladder costs an email none of its retries:
its event waits (deferred, not counted as an attempt) and the email goes out once the database is
back. The mailer reaches PostgreSQL through a proxy the test cuts."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from tests.integration.mailer.helpers import dead_letter_row, make_event, running_mailer, sent_rows, settings_for
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy


async def test_a_database_outage_longer_than_the_retry_ladder_dead_letters_nothing(
    settings, inbox, topologies, publish_to, make_app, sessions, counters
):
    for name, labels in [
        ("userreg_mailer_retried_total", {"kind": "database"}),
        ("userreg_mailer_dead_lettered_total", {"kind": "database"}),
        ("userreg_mailer_events_total", {"outcome": "dead_lettered"}),
        ("userreg_mailer_events_total", {"outcome": "retried"}),
    ]:
        counters.track(name, **labels)
    app = await make_app(email_confirmation_required=True)
    warm, sent, refused = make_event(app), make_event(app), make_event(app)
    inbox.reject_recipient(refused.user.email)
    async with TcpProxy.in_front_of(settings.database_dsn, 5432) as proxy:
        # Retries 0.2 s and 0.5 s apart: the ladder is used up in under a second.
        mail_settings = settings_for(
            settings,
            smtp_port=inbox.smtp_port,
            retry_delays="0.2,0.5",
            database_url=SecretStr(proxy.url_through(settings.database_dsn)),
        )
        topologies.append(mail_settings)
        async with running_mailer(mail_settings):
            publish = await publish_to(mail_settings)
            await publish(warm)  # the app is in the mailer's cache now: the first tries fail claiming
            await inbox.wait_for(lambda m: m.recipients == [warm.user.email])
            await proxy.cut()
            await publish(sent)
            await publish(refused)
            # Each event was looked at many more times than it has attempts (1 + 2 retries)...
            await eventually(
                lambda: counters("userreg_mailer_retried_total", kind="database") >= 2 * 8,
                timeout=20,
                what="the events to wait for the database, again and again",
            )
            await asyncio.sleep(1.0)
            # ...and neither was given up on, nor sent.
            assert counters("userreg_mailer_events_total", outcome="dead_lettered") == 0
            assert counters("userreg_mailer_events_total", outcome="retried") == 0
            assert [m.recipients for m in inbox.messages] == [[warm.user.email]]

            await proxy.restore()
            [message] = await inbox.wait_for(lambda m: m.recipients == [sent.user.email], timeout=45)
            assert message.message_id == f"<{sent.id}.confirmation@mail.test>"
            [row] = await sent_rows(sessions, sent.id)
            assert row.attempts == 1  # claimed once: the outage used up no attempt
            # The refused one still has every attempt the outage did not use: 550 on its first.
            dead = await eventually(
                lambda: dead_letter_row(sessions, refused.id), timeout=45, what="the refused email dead-lettered"
            )
            assert dead.attempts == 1 and dead.reason.startswith("recipient refused: 550")
    assert counters("userreg_mailer_dead_lettered_total", kind="database") == 0
    assert len(inbox.to(sent.user.email)) == 1
