"""The third shipped language end to end: confirmation-web speaks French to a French user or
browser (the one shipped page, translated by the French catalog), its dates and waits in French."""

# ruff: noqa: RUF001 - French is written with its typographic apostrophe (U+2019)

from __future__ import annotations

import pytest

from tests.integration.confirmation_web.support import data_page
from userreg.shared.db import UserStatus

pytestmark = pytest.mark.usefixtures("server")

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": "null"}  # what Chromium sends from our page


async def fetch(http, url, method="GET", **kwargs):
    async with http.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, response.headers, await response.text()


async def test_a_french_user_gets_the_pending_and_the_confirmed_page_in_french(make_app, make_link, http, url):
    app = await make_app("Club d'échecs", email_confirmation_required=True)
    link = await make_link(app, properties={"blUserLocale": "fr-CA"})
    status, headers, html = await fetch(http, url(link.path), headers={"Accept-Language": "en-US,en"})
    assert (status, data_page(html)) == (200, "confirmation-pending")
    assert '<html lang="fr">' in html and "Accept-Language" in headers["Vary"]
    assert "<title>Confirmez votre adresse e-mail · Club d&#39;échecs</title>" in html
    assert f"Vous confirmez <strong>{link.email}</strong> pour Club d&#39;échecs." in html
    assert "Confirmer mon adresse e-mail</button>" in html and "Confirmation en cours…" in html

    status, _, html = await fetch(
        http, url(f"/{app.app_id}/confirm"), method="POST", data={"token": link.token}, headers=SAME_ORIGIN
    )
    assert (status, data_page(html)) == (200, "confirmation-confirmed")
    assert '<html lang="fr">' in html and "Votre adresse e-mail est confirmée</h1>" in html
    assert f"Merci ! <strong>{link.email}</strong> est confirmée pour Club d&#39;échecs." in html
    assert "Vous pouvez maintenant vous connecter à Club d&#39;échecs et fermer cette page." in html


async def test_a_french_browser_gets_french_dates(make_app, make_link, http, url):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app, expired=True)
    status, _, html = await fetch(http, url(link.path), headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert (status, data_page(html)) == (410, "confirmation-expired")
    assert '<html lang="fr">' in html and "Ce lien a expiré</h1>" in html
    # Babel's French medium date ("2 janv. 2030") and short time, never the English month.
    expired_on = html.split("celui-ci a expiré le ", 1)[1].split("</p>", 1)[0]
    assert expired_on.endswith(" UTC.") and "," in expired_on
    assert not any(
        month in expired_on
        for month in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )


async def test_a_disabled_users_page_in_french(make_app, make_link, http, url):
    app = await make_app("Club", email_confirmation_required=True)
    link = await make_link(app, status=UserStatus.DISABLED, properties={"blUserLocale": "fr"})
    status, _, html = await fetch(http, url(link.path))
    assert (status, data_page(html)) == (403, "confirmation-disabled")
    assert "Ce compte est désactivé</h1>" in html and "contactez l’assistance de Club." in html
