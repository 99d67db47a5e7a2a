"""Which email `user.email_change_requested` causes, where it goes and what its template sees. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from userreg.mailer.rules.emails import emails_for
from userreg.mailer.rules.policy import PermanentFailure
from userreg.mailer.rules.redaction import redact
from userreg.mailer.variables import template_context
from userreg.shared.events import USER_EMAIL_CHANGE_REQUESTED, Confirmation, Event, EventUser

TOKEN = "A" * 43
LINK = Confirmation(
    url=f"https://confirm.example/APP/change-email/{TOKEN}", expiresAt=datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
)
USER = EventUser(objectId="U", identityProperty="email", identity="old@example.com", email="old@example.com")


def _event(**fields) -> Event:
    return Event(type=USER_EMAIL_CHANGE_REQUESTED, appId="APP", user=USER, **fields)


def test_the_email_change_email_and_its_variables():
    event = _event(confirmation=LINK, newEmail="new@example.com")
    assert emails_for(event, welcome_email_enabled=True) == ("email-change",)
    context = template_context(event, app_name="Club")
    assert (context["new_email"], context["confirmation_url"]) == ("new@example.com", LINK.url)
    assert context["expires_at"] == "2030-01-02 03:04 UTC" and context["identity_value"] == "old@example.com"


@pytest.mark.parametrize("fields", [{"newEmail": "new@example.com"}, {"confirmation": LINK}])
def test_without_its_link_or_its_address_it_can_never_be_sent(fields):
    with pytest.raises(PermanentFailure):
        emails_for(_event(**fields), welcome_email_enabled=False)


def test_its_token_is_redacted_like_the_other_links():
    assert TOKEN not in redact(f"550 rejected {LINK.url}")
    assert "/change-email/[redacted]" in redact(f"550 rejected {LINK.url}")
