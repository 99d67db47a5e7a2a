"""`GET /docs`: the OpenAPI document (`/openapi.json`) as a page, rendered by Redoc.

Everything the page needs is served from this package (`static/`): the page itself and Redoc's
standalone bundle, vendored unchanged from npm (`npm pack redoc@2.5.4`, integrity
sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==)
with its licence (`redoc.LICENSE`, MIT) and the notices of what it bundles
(`redoc.standalone.js.LICENSE.txt`). No other site is asked for anything, and the page's Content
Security Policy says so: scripts and the document from this origin only, no inline script and no
eval. Redoc writes its styles into `<style>` elements (inline styles are allowed, nothing else
inline) and runs its search in a worker made from a `blob:` URL. Its sidebar's "API docs by
Redocly" shows a logo from Redocly's CDN: the policy refuses it (the browser's console says so),
and the link shows without it.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import hdrs, web

STATIC = resources.files("userreg.registration") / "static"
PAGE = "docs.html"
SCRIPT = "redoc.standalone.js"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_HEADERS = {
    hdrs.CONTENT_SECURITY_POLICY: CONTENT_SECURITY_POLICY,
    hdrs.X_CONTENT_TYPE_OPTIONS: "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _file(name: str, content_type: str, cache_control: str) -> web.FileResponse:
    return web.FileResponse(
        str(STATIC / name), headers={**_HEADERS, hdrs.CONTENT_TYPE: content_type, hdrs.CACHE_CONTROL: cache_control}
    )


async def docs_page(request: web.Request) -> web.FileResponse:
    return _file(PAGE, "text/html; charset=utf-8", "no-cache")


async def redoc_script(request: web.Request) -> web.FileResponse:
    # Revalidated hourly (ETag, Last-Modified): an upgraded package's bundle reaches browsers soon.
    return _file(SCRIPT, "text/javascript; charset=utf-8", "public, max-age=3600")
