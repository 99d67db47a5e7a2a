"""The local inbox: what it keeps, how it shows it, and the trouble it can be told to make."""

from __future__ import annotations

from email.message import EmailMessage

import aiohttp
import aiosmtplib
import pytest
from markupsafe import escape

from userreg.inbox import Inbox


def _message(to: str = "reader@example.com", subject: str = "Hi") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("plain words")
    message.add_alternative('<p onclick="x()">rich <script>alert(1)</script> words</p>', subtype="html")
    return message


async def _send(inbox: Inbox, message: EmailMessage) -> None:
    await aiosmtplib.send(message, hostname="127.0.0.1", port=inbox.smtp_port, start_tls=False)


async def test_web_page_shows_the_html_part_only_inside_a_sandboxed_iframe():
    async with Inbox(smtp_port=0, http_port=0) as inbox:
        await _send(inbox, _message(subject="<b>bold</b> subject"))
        [received] = inbox.messages
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{inbox.http_port}"
            async with http.get(f"{base}/") as response:
                index = await response.text()
            async with http.get(f"{base}/messages/{received.id}") as response:
                page = await response.text()
            async with http.get(f"{base}/messages/999") as response:
                assert response.status == 404
            async with http.get(f"{base}/api/messages/{received.id}") as response:
                data = await response.json()
    assert "&lt;b&gt;bold&lt;/b&gt; subject" in index and "<b>bold</b>" not in index
    assert "<script>" not in page
    assert f'<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{escape(received.html)}">' in page
    assert "<pre>plain words\n</pre>" in page
    assert data["html"] == received.html and data["text"] == "plain words\n"
    assert ["Subject", "<b>bold</b> subject"] in data["headers"]


async def test_failures_on_demand_then_normal_service():
    async with Inbox(smtp_port=0, http_port=None) as inbox:
        inbox.fail_next(1, 421)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await _send(inbox, _message())
        assert refused.value.code == 421
        inbox.reject_recipient("Blocked@Example.com")
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await _send(inbox, _message(to="blocked@example.com"))
        inbox.accept_recipient("blocked@example.com")
        await _send(inbox, _message(to="blocked@example.com"))
        assert [m.recipients for m in inbox.messages] == [["blocked@example.com"]]


async def test_keeps_at_most_max_messages_newest_last():
    async with Inbox(smtp_port=0, http_port=None, max_messages=2) as inbox:
        for n in range(3):
            await _send(inbox, _message(subject=f"n{n}"))
        assert [m.subject for m in inbox.messages] == ["n1", "n2"]
        assert [m.id for m in inbox.messages] == [2, 3]


async def test_stopping_hangs_up_on_open_sessions():
    inbox = Inbox(smtp_port=0, http_port=None)
    await inbox.start()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=inbox.smtp_port, start_tls=False)
    await client.connect()
    await inbox.stop()
    with pytest.raises((aiosmtplib.SMTPServerDisconnected, ConnectionError)):
        await client.noop()
    client.close()
