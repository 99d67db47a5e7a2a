"""Turning an `Outcome` into an HTML response: the template (the app's override or the shipped
default), the locale, and the security headers every page carries. What a template may use is
`page_context`; the overrides are read through the repository."""

from __future__ import annotations

import logging
import secrets
import time
from importlib import resources
from typing import Any

from aiohttp import web
from jinja2 import TemplateSyntaxError
from prometheus_client import Counter

from userreg.confirmation_web.model import Outcome
from userreg.confirmation_web.page_context import base_path_of, page_context
from userreg.confirmation_web.repository import Repository
from userreg.shared.locales import accepted_languages, best_match
from userreg.shared.templates import (
    DEFAULT_LOCALE,
    Page,
    TemplateLimitExceeded,
    TemplateSource,
    TemplateStore,
    available_locales,
)

logger = logging.getLogger(__name__)

PAGES_SERVED = Counter("userreg_confirmation_pages_total", "Confirmation pages served", ["page", "status"])

# An override that broke a render limit is not tried again for this long (per app, page and source):
# each try may hold the event loop for up to TEMPLATE_RENDER_SECONDS, and anyone can open a page.
BROKEN_OVERRIDE_SECONDS = 60.0
BROKEN_OVERRIDES_KEPT = 1000

# The page shown when something on our side failed (not a template an app can override).
ERROR_PAGE = "error"
ERROR_SOURCE = TemplateSource(
    subject=None,
    text=None,
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


class PageRenderer:
    """Renders pages through the shared `TemplateStore`, so an app's override (set with
    `userreg template set`) is used from the next request on, without a restart."""

    def __init__(self, store: TemplateStore, repository: Repository, public_confirmation_url: str) -> None:
        self._store = store
        self._repository = repository
        # Links, forms and assets live under the public URL's path (a proxy may mount us below /).
        self._base_path = base_path_of(public_confirmation_url)
        self._locales = available_locales()
        # (app, page, hash of the override) → until when the override is skipped.
        self._broken: dict[tuple[str, str, int], float] = {}

    @property
    def static_url(self) -> str:
        return f"{self._base_path}/static"

    def locale_for(self, outcome: Outcome, accept_language: str | None) -> str:
        user_locale = None
        if outcome.link is not None:
            value = outcome.link.properties.get("blUserLocale")
            user_locale = value if isinstance(value, str) else None
        return best_match((user_locale, *accepted_languages(accept_language)), self._locales, DEFAULT_LOCALE)

    def context(self, outcome: Outcome, locale: str, nonce: str) -> dict[str, Any]:
        """Everything a page template may use (documented in the service's README)."""
        return page_context(outcome, locale, nonce, self._base_path)

    async def render(self, outcome: Outcome, accept_language: str | None) -> web.Response:
        locale = self.locale_for(outcome, accept_language)
        nonce = secrets.token_urlsafe(16)
        context = self.context(outcome, locale, nonce)
        may_override = outcome.link is None or outcome.link.has_page_overrides
        html = await self._html(outcome.page, context["app_id"] if may_override else None, locale, context)
        PAGES_SERVED.labels(outcome.page.value, str(outcome.status)).inc()
        response = web.Response(
            text=html, status=outcome.status, content_type="text/html", charset="utf-8", headers=page_headers(nonce)
        )
        if outcome.retry_after_seconds is not None:
            response.headers["Retry-After"] = str(outcome.retry_after_seconds)
        return response

    async def _html(self, page: Page, app_id: str | None, locale: str, context: dict[str, Any]) -> str:
        """The page from the app's override, or from the shipped default when `app_id` is None."""
        default = self._store.default_source(page)
        if app_id is None:
            return self._store.render_page(default, context)
        source = await self._repository.page_source(self._store, app_id, page, locale)
        if source.html == default.html:
            return self._store.render_page(default, context)
        broken = (app_id, page.value, hash(source.html))
        if self._broken.get(broken, 0.0) > time.monotonic():
            return self._store.render_page(default, context)
        try:
            return self._store.render_page(source, context)
        except Exception as error:  # an override is operator code: any error in it is possible
            # A broken override must not stop users from confirming: fall back to the shipped page
            # (same status) and say so in the log, where the operator looks. Without the error's
            # message: a template can put any value, the user's data or the token, into it.
            if isinstance(error, TemplateLimitExceeded):
                self._remember_broken(broken)
            logger.warning(
                "app %s: page template %s (%s) failed to render (%s); serving the shipped page%s",
                app_id,
                page.value,
                locale,
                describe_failure(error),
                f" for {BROKEN_OVERRIDE_SECONDS:g} s" if isinstance(error, TemplateLimitExceeded) else "",
            )
            return self._store.render_page(default, context)

    def _remember_broken(self, key: tuple[str, str, int]) -> None:
        now = time.monotonic()
        if len(self._broken) >= BROKEN_OVERRIDES_KEPT:
            self._broken = {known: until for known, until in self._broken.items() if until > now}
            if len(self._broken) >= BROKEN_OVERRIDES_KEPT:
                self._broken.clear()
        self._broken[key] = now + BROKEN_OVERRIDE_SECONDS

    def render_error(self, status: int, accept_language: str | None) -> web.Response:
        """Our own failure (database away, a bug): a page that says so, never a traceback."""
        locale = best_match(accepted_languages(accept_language), self._locales, DEFAULT_LOCALE)
        nonce = secrets.token_urlsafe(16)
        context = {
            "page": ERROR_PAGE,
            "locale": locale,
            "app_name": None,
            "app_initial": "",
            "status": status,
            "static_url": self.static_url,
            "csp_nonce": nonce,
        }
        response = web.Response(
            text=self._store.render_page(ERROR_SOURCE, context),
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers=page_headers(nonce),
        )
        if status == 503:
            response.headers["Retry-After"] = "5"
        return response


def describe_failure(error: Exception) -> str:
    """What went wrong in a template, for the log: the limit it broke, or the error's type and the
    template line, never the error's message (it may hold a user's data)."""
    if isinstance(error, TemplateLimitExceeded):
        return f"TemplateLimitExceeded: {error.reason}"
    if isinstance(error, TemplateSyntaxError):  # about the template's own text
        return f"TemplateSyntaxError at line {error.lineno}: {error.message}"
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return type(error).__name__ if line is None else f"{type(error).__name__} at line {line}"
