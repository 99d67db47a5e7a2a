"""The third shipped language end to end: a French user's emails come out of the real mailer in
French (the one shipped template, translated by the French catalog), over the broker and SMTP."""

# ruff: noqa: RUF001 - French is written with its typographic apostrophe (U+2019)

from __future__ import annotations

from tests.integration.mailer.helpers import make_event, make_reset_event


async def test_a_french_user_gets_the_confirmation_email_in_french(mailer, publish, inbox, make_app):
    app = await make_app("Club d'échecs", email_confirmation_required=True, welcome_email_enabled=True)
    event = make_event(app, name="Léa", locale="fr-CA")
    await publish(event)
    messages = await inbox.wait_for(lambda m: m.recipients == [event.user.email], count=2)
    by_subject = {m.subject: m for m in messages}
    assert set(by_subject) == {"Confirmez votre adresse e-mail pour Club d'échecs", "Bienvenue sur Club d'échecs"}
    confirmation = by_subject["Confirmez votre adresse e-mail pour Club d'échecs"]
    assert confirmation.text.startswith("Bonjour Léa,\n\nMerci de confirmer l’adresse e-mail de votre compte")
    assert event.confirmation.url in confirmation.text
    # The expiry keeps the format the contract gives `expires_at`, whatever the language.
    assert f"Ce lien est valable jusqu’au {event.confirmation.expires_at:%Y-%m-%d %H:%M} UTC." in confirmation.text
    assert '<html lang="fr">' in confirmation.html and "Confirmer l’adresse e-mail</a>" in confirmation.html
    assert "Ou copiez ce lien dans votre navigateur :" in confirmation.html
    assert "Confirm" not in confirmation.text and "Bestätigen" not in confirmation.html


async def test_a_french_password_reset_email(mailer, publish, inbox, make_app):
    app = await make_app("Club", email_confirmation_required=True)
    event = make_reset_event(app, name=None, locale="fr")
    await publish(event)
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert message.subject == "Réinitialisez votre mot de passe pour Club"
    assert message.text.startswith("Bonjour,\n\nQuelqu’un, probablement vous, a demandé la réinitialisation")
    assert "Choisir un nouveau mot de passe</a>" in message.html and '<html lang="fr">' in message.html
