"""Reading the confirmation pages as a plain HTTP client (no script) sees them, and submitting their
forms as the page would."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

_DATA_PAGE = re.compile(r'<body[^>]*\bdata-page="([^"]+)"')
_FORM = re.compile(r'<form[^>]*\baction="([^"]+)"[^>]*>(.*?)</form>', re.S)
_TOKEN = re.compile(r'name="token"\s+value="([^"]*)"')


@dataclass(frozen=True)
class Page:
    url: str
    status: int
    html: str

    @property
    def name(self) -> str | None:
        """The page's `data-page` (docs/api.md, Confirmation pages): confirmation-pending, -confirmed, -expired, …"""
        found = _DATA_PAGE.search(self.html)
        return found[1] if found else None

    def form(self) -> tuple[str, dict[str, str]]:
        """The page's one form: where it posts, and its fields."""
        [(action, body)] = _FORM.findall(self.html)
        token = _TOKEN.search(body)
        fields = {"token": html.unescape(token[1])} if token else {}
        return urljoin(self.url, html.unescape(action)), fields


async def open_page(http: aiohttp.ClientSession, url: str) -> Page:
    async with http.get(url, allow_redirects=True) as response:
        return Page(str(response.url), response.status, await response.text())


async def submit(http: aiohttp.ClientSession, page: Page) -> Page:
    """Post the page's form as its browser would: same-origin, form-encoded."""
    action, fields = page.form()
    parts = urlsplit(page.url)
    headers = {"Origin": f"{parts.scheme}://{parts.netloc}", "Sec-Fetch-Site": "same-origin"}
    async with http.post(action, data=fields, headers=headers, allow_redirects=True) as response:
        return Page(str(response.url), response.status, await response.text())
