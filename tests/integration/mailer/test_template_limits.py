"""A template that breaks a render limit at send time dead-letters that email with the limit in its
reason; the mailer goes on consuming and sends the next emails (the README's Security section). The overrides are
stored directly, as if `userreg template set` had been bypassed or the user's data made them big."""

from __future__ import annotations

from functools import partial

import aiohttp
import pytest

from tests.integration.mailer.helpers import dead_letter_row, make_event, sent_rows, settings_for
from tests.support.polling import eventually
from userreg.mailer.dead_letters import list_dead_letters
from userreg.mailer.keys import CONSUMER
from userreg.shared.db import Template
from userreg.shared.settings import Settings

RENDER_SECONDS = 0.5
SIZE_BOMB = "{{ 'a' * 10**10 }}"
OUTPUT_BOMB = "{% for i in range(10**5) %}{{ confirmation_url }} {% endfor %}"
TIME_BOMB = "{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}"


@pytest.fixture
def mail_settings(settings: Settings, inbox, topologies: list[Settings]) -> Settings:
    made = settings_for(settings, smtp_port=inbox.smtp_port, template_render_seconds=RENDER_SECONDS)
    topologies.append(made)
    return made


async def broken_app(make_app, sessions, **parts: str):
    app = await make_app(email_confirmation_required=True)
    async with sessions() as session, session.begin():
        session.add(Template(app_id=app.app_id, kind="email", name="confirmation", locale="", **parts))
    return app


async def test_a_template_bomb_dead_letters_its_email_and_the_mailer_sends_on(
    mailer, mail_settings, publish, inbox, make_app, sessions, counters
):
    counters.track("userreg_mailer_dead_lettered_total", kind="template")
    counters.track("userreg_mailer_sent_total", template="confirmation")
    size_bomb = await broken_app(make_app, sessions, text_body=SIZE_BOMB)
    output_bomb = await broken_app(make_app, sessions, subject=OUTPUT_BOMB)
    time_bomb = await broken_app(make_app, sessions, html_body=TIME_BOMB)
    fine = await make_app(email_confirmation_required=True)

    bombs = [make_event(size_bomb), make_event(output_bomb), make_event(time_bomb)]
    after = make_event(fine)
    for event in (*bombs, after):
        await publish(event)

    # The email right after the bombs is sent, by the same mailer.
    [message] = await inbox.wait_for(lambda m: m.recipients == [after.user.email])
    assert after.confirmation.url in message.text
    await sent_rows(sessions, after.id)

    reasons = {}
    for event in bombs:
        row = await eventually(partial(dead_letter_row, sessions, event.id), what="the dead letter recorded")
        reasons[event.app_id] = row.reason

    def breaks(app) -> str:
        return f"the confirmation template of app {app.app_id} breaks a render limit: "

    assert reasons[size_bomb.app_id] == breaks(size_bomb) + "a value would exceed TEMPLATE_OUTPUT_BYTES (524288 bytes)"
    assert (
        reasons[output_bomb.app_id]
        == breaks(output_bomb) + "its output would exceed TEMPLATE_OUTPUT_BYTES (524288 bytes)"
    )
    assert (
        reasons[time_bomb.app_id]
        == breaks(time_bomb) + f"it takes longer than TEMPLATE_RENDER_SECONDS ({RENDER_SECONDS:g} s)"
    )
    listed = {letter["eventId"]: letter for letter in await list_dead_letters(mail_settings)}
    assert all(listed[event.id]["failure"] == "template" for event in bombs)
    assert counters("userreg_mailer_dead_lettered_total", kind="template") == 3
    assert counters("userreg_mailer_sent_total", template="confirmation") == 1
    assert [m.recipients for m in inbox.messages] == [[after.user.email]]

    # Still consuming: bomb after bomb, and what comes next is still sent.
    again, last = make_event(time_bomb), make_event(fine)
    await publish(again)
    await publish(last)
    await inbox.wait_for(lambda m: m.recipients == [last.user.email])
    await eventually(partial(dead_letter_row, sessions, again.id), what="the second dead letter")
    assert mailer.app[CONSUMER].ready
    async with aiohttp.ClientSession() as http, http.get(mailer.make_url("/health")) as response:
        assert response.status == 200
