"""An SMTP server that quotes the message in its error reply (the base64 body, a quoted-printable
copy of it) never gets a link's token into what the mailer keeps: the delivery's last error, the
dead letter's reason and record, the listing an operator reads, the mailer's logs."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from tests.integration.mailer.helpers import (
    QuotingServer,
    dead_letter_row,
    delivery_rows,
    make_event,
    running_mailer,
    settings_for,
    token_forms,
)
from tests.support.polling import eventually
from userreg.mailer.dead_letters import list_dead_letters
from userreg.shared.db import Template
from userreg.shared.events import Confirmation
from userreg.shared.tokens import confirmation_url, new_token


def _mailer_logs(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records if record.name.startswith("userreg"))


async def _refused_event(
    settings,
    topologies,
    publish_to,
    make_app,
    sessions,
    caplog,
    *,
    code: int,
    prefix: str,
    retry_delays: str = "0.2,0.5",
):
    """Send one confirmation email to a server that refuses it with `code`, quoting it; returns the
    token, the server's replies and every text the mailer kept about it."""
    caplog.set_level(logging.DEBUG, logger="userreg")
    app = await make_app(email_confirmation_required=True)
    async with sessions() as session, session.begin():
        # The link early in the body: what the reply quotes of it stays within the kept 500 characters.
        session.add(
            Template(
                app_id=app.app_id,
                kind="email",
                name="confirmation",
                locale="",
                text_body=prefix + "{{ confirmation_url }}\n\nThanks!",
            )
        )
    token = new_token()
    event = make_event(app).model_copy(
        update={
            "confirmation": Confirmation(
                url=confirmation_url(settings.public_confirmation_url, app.app_id, token),
                expiresAt=datetime.now(UTC) + timedelta(days=1),
            )
        }
    )
    async with QuotingServer(code) as server:
        mail_settings = settings_for(settings, smtp_port=server.port, retry_delays=retry_delays)
        topologies.append(mail_settings)
        async with running_mailer(mail_settings):
            publish = await publish_to(mail_settings)
            await publish(event)
            row = await eventually(partial(dead_letter_row, sessions, event.id), what="the dead letter recorded")
            listed = await list_dead_letters(mail_settings)
    [delivery] = await delivery_rows(sessions, event.id)
    kept = {
        "last_error": delivery.last_error,
        "reason": row.reason,
        "record": json.dumps(row.payload),
        "listing": json.dumps(listed),
        "logs": _mailer_logs(caplog),
    }
    return token, server.replies, kept


@pytest.mark.parametrize("prefix", ["", "x", "xy"], ids=["offset-0", "offset-1", "offset-2"])
async def test_a_5xx_quoting_the_message_leaves_no_form_of_the_token(
    settings, topologies, publish_to, make_app, sessions, caplog, prefix
):
    token, replies, kept = await _refused_event(
        settings, topologies, publish_to, make_app, sessions, caplog, code=554, prefix=prefix
    )
    [reply] = replies
    assert {"base64", "quoted-printable"} <= set(token_forms(reply, token))  # the reply carried it
    for where, text in kept.items():
        assert token_forms(text, token) == [], f"the token is in the {where}: {text}"
    assert kept["reason"].startswith("server answered 554 5.7.1 Message refused, it contains: [redacted]")
    assert kept["reason"].endswith(" Goodbye") and kept["last_error"] == kept["reason"]
    assert "dead-lettered after 1 attempt(s): server answered 554 5.7.1" in kept["logs"]


async def test_a_4xx_quoting_the_message_leaves_no_form_of_the_token_through_its_retries(
    settings, topologies, publish_to, make_app, sessions, caplog
):
    token, replies, kept = await _refused_event(
        settings, topologies, publish_to, make_app, sessions, caplog, code=451, prefix=""
    )
    assert len(replies) == 3  # the first attempt and two retries
    assert all(token_forms(reply, token) for reply in replies)
    for where, text in kept.items():
        assert token_forms(text, token) == [], f"the token is in the {where}: {text}"
    assert kept["reason"].startswith("gave up after 3 attempts; last error: server answered 451 5.7.1 ")
    assert kept["logs"].count("retrying in") == 2
