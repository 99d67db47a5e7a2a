"""The console's pages: one Jinja2 environment over `templates/` (HTML always autoescaped, every
page extending `base.html`), and the headers every page carries (a nonce CSP: only our own files
and the inline code that carries this response's nonce)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

# Each directive of a page's Content-Security-Policy; "{nonce}" is the response's nonce. A page that
# needs more (an email preview's inline styles) passes its own values for single directives.
CSP_DIRECTIVES: dict[str, str] = {
    "default-src": "'none'",
    "script-src": "'self' 'nonce-{nonce}'",
    "style-src": "'self' 'nonce-{nonce}'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}


def content_security_policy(nonce: str, overrides: Mapping[str, str] | None = None) -> str:
    directives = {**CSP_DIRECTIVES, **(overrides or {})}
    return "; ".join(f"{name} {value.replace('{nonce}', nonce)}" for name, value in directives.items())


def page_headers(nonce: str, csp: Mapping[str, str] | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(nonce, csp),
        # Pages show keys, users' data and forms with a CSRF token: never kept in a cache.
        "Cache-Control": "no-store",
        # Same-origin requests keep their Referer and Origin (the POST checks read Origin).
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


def when(value: datetime | None) -> str:
    """A moment as the console shows it: UTC, to the second ("—" for none)."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Pages:
    """Renders the console's templates into responses."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("userreg.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["when"] = when

    def response(
        self, template: str, context: dict[str, Any], *, status: int = 200, csp: Mapping[str, str] | None = None
    ) -> web.Response:
        """The page `template` rendered with `context` (to which `csp_nonce` is added)."""
        nonce = secrets.token_urlsafe(16)
        html = self._env.get_template(template).render({**context, "csp_nonce": nonce})
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8", headers=page_headers(nonce, csp)
        )
