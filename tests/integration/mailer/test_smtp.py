"""Talking to the SMTP server as configured: connections reused, TLS, STARTTLS and AUTH."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from pydantic import SecretStr

from tests.integration.mailer.helpers import dead_letter_row, make_event, running_mailer, settings_for
from tests.support.polling import eventually
from userreg.inbox import Inbox
from userreg.mailer.smtp import SmtpPool


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
def server_tls(certificate, monkeypatch) -> ssl.SSLContext:
    """The server's TLS context; the mailer trusts the certificate (as an operator would, through
    the system's CA store; here through SSL_CERT_FILE)."""
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_connections_are_reused_across_messages(mailer, publish, inbox, make_app):
    app = await make_app(email_confirmation_required=True)
    events = [make_event(app) for _ in range(30)]
    for event in events:
        await publish(event)
    await inbox.wait_for(count=30)
    assert 1 <= inbox.connections_opened <= 8  # at most one per pooled connection, not one per email


async def test_starttls_and_auth(settings, topologies, publish_to, make_app, server_tls):
    async with Inbox(smtp_port=0, http_port=None, tls_context=server_tls, credentials=("mailer", "s3cret")) as inbox:
        mail_settings = settings_for(
            settings,
            smtp_port=inbox.smtp_port,
            smtp_starttls=True,
            smtp_username="mailer",
            smtp_password=SecretStr("s3cret"),
        )
        topologies.append(mail_settings)
        app = await make_app(email_confirmation_required=True)
        event = make_event(app)
        async with running_mailer(mail_settings):
            await (await publish_to(mail_settings))(event)
            [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
        assert event.confirmation.url in message.text


async def test_implicit_tls(settings, topologies, publish_to, make_app, server_tls):
    async with Inbox(smtp_port=0, http_port=None, tls_context=server_tls, implicit_tls=True) as inbox:
        mail_settings = settings_for(settings, smtp_port=inbox.smtp_port, smtp_tls=True)
        topologies.append(mail_settings)
        app = await make_app(email_confirmation_required=True)
        event = make_event(app)
        async with running_mailer(mail_settings):
            await (await publish_to(mail_settings))(event)
            await inbox.wait_for(lambda m: m.recipients == [event.user.email])


async def test_wrong_password_is_retried_then_dead_lettered(
    settings, topologies, publish_to, make_app, sessions, server_tls
):
    async with Inbox(smtp_port=0, http_port=None, tls_context=server_tls, credentials=("mailer", "right")) as inbox:
        mail_settings = settings_for(
            settings,
            smtp_port=inbox.smtp_port,
            smtp_starttls=True,
            smtp_username="mailer",
            smtp_password=SecretStr("wrong"),
        )
        topologies.append(mail_settings)
        app = await make_app(email_confirmation_required=True)
        event = make_event(app)
        async with running_mailer(mail_settings):
            await (await publish_to(mail_settings))(event)
            row = await eventually(lambda: dead_letter_row(sessions, event.id), what="the dead letter")
        assert row.reason.startswith("gave up after 3 attempts; last error: server answered 535")
        assert inbox.messages == []


def test_tls_and_starttls_exclude_each_other(settings):
    with pytest.raises(ValueError, match="exclude each other"):
        SmtpPool(settings.model_copy(update={"smtp_tls": True, "smtp_starttls": True}))


async def test_plain_server_refuses_a_mailer_that_insists_on_starttls(
    settings, inbox, topologies, publish_to, make_app, counters
):
    counters.track("userreg_mailer_retried_total", kind="connection")
    mail_settings = settings_for(settings, smtp_port=inbox.smtp_port, smtp_starttls=True)
    topologies.append(mail_settings)
    app = await make_app(email_confirmation_required=True)
    async with running_mailer(mail_settings):
        await (await publish_to(mail_settings))(make_event(app))
        await eventually(lambda: counters("userreg_mailer_retried_total", kind="connection") >= 1, what="a retry")
    assert inbox.messages == []  # never sent in the clear
