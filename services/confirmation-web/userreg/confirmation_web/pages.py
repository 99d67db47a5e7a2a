"""Turning an `Outcome` into an HTML response: the template (the app's override or the shipped
default), the locale, the rendering context and the security headers every page carries."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timezone
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.confirmation_web.handlers import Outcome
from userreg.confirmation_web.rules import Page, choose_locale, identity_of
from userreg.shared.confirmations import SECRET_PROPERTIES
from userreg.shared.templates import DEFAULT_LOCALE, TemplateSource, TemplateStore, available_locales

logger = logging.getLogger(__name__)

PAGES_SERVED = Counter("userreg_confirmation_pages_total", "Confirmation pages served", ["page", "status"])

# The page shown when something on our side failed (not a template an app can override).
ERROR_PAGE = "error"
ERROR_SOURCE = TemplateSource(
    subject=None, text=None,
    html=resources.files("userreg.confirmation_web").joinpath("error.html").read_text(encoding="utf-8"),
)


def content_security_policy(nonce: str) -> str:
    """Only our own files, plus inline code carrying this response's nonce (for app overrides that
    inline a style or script). No other origin can serve anything into the page, frame it, or be
    the target of its forms."""
    return (
        "default-src 'none'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; "
        "font-src 'self'; "
        "form-action 'self'; "
        "base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def page_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(nonce),
        # A page carries a user's token in its form: never keep it in a cache, never leak the URL.
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Vary": "Accept-Language",
    }


def format_datetime(moment: datetime | None, locale: str) -> str | None:
    """A date and time a reader of that language recognises, always in UTC (we do not know theirs)."""
    if moment is None:
        return None
    moment = moment.astimezone(timezone.utc)
    if locale == "de":
        return moment.strftime("%d.%m.%Y, %H:%M UTC")
    return moment.strftime("%d %b %Y, %H:%M UTC")


class PageRenderer:
    """Renders pages through the shared `TemplateStore`, so an app's override (set with
    `userreg template set`) is used from the next request on, without a restart."""

    def __init__(
        self, store: TemplateStore, sessions: async_sessionmaker, public_confirmation_url: str
    ) -> None:
        self._store = store
        self._sessions = sessions
        # Links, forms and assets live under the public URL's path (a proxy may mount us below /).
        self._base_path = urlsplit(public_confirmation_url).path.rstrip("/")
        self._locales = available_locales()

    @property
    def static_url(self) -> str:
        return f"{self._base_path}/static"

    def locale_for(self, outcome: Outcome, accept_language: str | None) -> str:
        user_locale = None
        if outcome.link is not None:
            value = outcome.link.properties.get("blUserLocale")
            user_locale = value if isinstance(value, str) else None
        return choose_locale(user_locale, accept_language, self._locales, DEFAULT_LOCALE)

    def context(self, outcome: Outcome, locale: str, nonce: str) -> dict[str, Any]:
        """Everything a page template may use (documented in the service's README)."""
        link = outcome.link
        app_id = link.app_id if link else outcome.app_id
        app_name = link.app_name if link else outcome.app_name
        return {
            "page": outcome.page.value,
            "locale": locale,
            "app_id": app_id,
            "app_name": app_name,
            "app_initial": (app_name or "").strip()[:1].upper(),
            "identity_name": link.identity_property if link else None,
            "identity_value": identity_of(link) if link else None,
            "user": {key: value for key, value in link.properties.items() if key not in SECRET_PROPERTIES}
            if link else {},
            "expires_at": link.expires_at if link else None,
            "expires_at_text": format_datetime(link.expires_at if link else None, locale),
            "token": outcome.token,
            "confirm_url": f"{self._base_path}/{app_id}/confirm" if app_id else None,
            "resend_url": f"{self._base_path}/{app_id}/confirm/resend" if app_id else None,
            "can_resend": bool(link and link.confirmation_required and outcome.token),
            "just_confirmed": outcome.just_confirmed,
            "resend": outcome.resend,
            "retry_after_seconds": outcome.retry_after_seconds,
            "new_link_expires_at": outcome.new_link_expires_at,
            "new_link_expires_at_text": format_datetime(outcome.new_link_expires_at, locale),
            "failure": outcome.failure,
            "static_url": self.static_url,
            "csp_nonce": nonce,
        }

    async def render(self, outcome: Outcome, accept_language: str | None) -> web.Response:
        locale = self.locale_for(outcome, accept_language)
        nonce = secrets.token_urlsafe(16)
        context = self.context(outcome, locale, nonce)
        may_override = outcome.link is None or outcome.link.has_page_overrides
        html = await self._html(outcome.page, context["app_id"] if may_override else None, locale, context)
        PAGES_SERVED.labels(outcome.page.value, str(outcome.status)).inc()
        response = web.Response(text=html, status=outcome.status, content_type="text/html", charset="utf-8",
                                headers=page_headers(nonce))
        if outcome.retry_after_seconds is not None:
            response.headers["Retry-After"] = str(outcome.retry_after_seconds)
        return response

    async def _html(self, page: Page, app_id: str | None, locale: str, context: dict[str, Any]) -> str:
        """The page from the app's override, or from the shipped default when `app_id` is None."""
        if app_id is None:
            return self._store.render_page(self._store.default_source(page.value, locale), context)
        async with self._sessions() as session:
            source = await self._store.source(session, app_id, page.value, locale)
        try:
            return self._store.render_page(source, context)
        except Exception as error:  # an override is operator code: any error in it is possible
            default = self._store.default_source(page.value, locale)
            if source.html == default.html:
                raise
            # A broken override must not stop users from confirming: fall back to the shipped
            # page and say so in the log, where the operator looks. The message helps fixing the
            # template, but a template can put any value into it, so the token is cut out.
            message = str(error)
            if context.get("token"):
                message = message.replace(context["token"], "[token]")
            logger.warning("app %s: page template %s (%s) failed to render (%s: %s); using the default",
                           app_id, page.value, locale, type(error).__name__, message[:500])
            return self._store.render_page(default, context)

    def render_error(self, status: int, accept_language: str | None) -> web.Response:
        """Our own failure (database away, a bug): a page that says so, never a traceback."""
        locale = choose_locale(None, accept_language, self._locales, DEFAULT_LOCALE)
        nonce = secrets.token_urlsafe(16)
        context = {"page": ERROR_PAGE, "locale": locale, "app_name": None, "app_initial": "",
                   "status": status, "static_url": self.static_url, "csp_nonce": nonce}
        response = web.Response(text=self._store.render_page(ERROR_SOURCE, context), status=status,
                                content_type="text/html", charset="utf-8", headers=page_headers(nonce))
        if status == 503:
            response.headers["Retry-After"] = "5"
        return response
