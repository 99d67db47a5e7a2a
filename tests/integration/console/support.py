"""A signed-in console client for the tests: pages fetched with its session cookie, forms posted
with the CSRF token the pages carry."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import aiohttp

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class Page:
    status: int
    text: str
    headers: dict[str, str]
    url: str

    def contains(self, fragment: str) -> bool:
        return fragment in self.text


class ConsoleClient:
    """An HTTP client of the console at `base_url`, keeping cookies (signed in or not)."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url
        self.csrf_token = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def get(self, path: str, *, follow: bool = True, headers: dict | None = None) -> Page:
        async with self.http.get(self.url(path), allow_redirects=follow, headers=headers) as response:
            page = Page(response.status, await response.text(), dict(response.headers), str(response.url))
        found = CSRF_FIELD.search(page.text)
        if found:
            self.csrf_token = html.unescape(found[1])
        return page

    async def post(
        self,
        path: str,
        fields: dict[str, str] | None = None,
        *,
        csrf: bool = True,
        follow: bool = True,
        headers: dict | None = None,
    ) -> Page:
        """POST a form (with this session's CSRF token unless `csrf` is off); pages it leads to
        are followed unless `follow` is off."""
        data = dict(fields or {})
        if csrf:
            if not self.csrf_token:
                await self.get("/apps")
            data.setdefault("csrf_token", self.csrf_token)
        async with self.http.post(self.url(path), data=data, allow_redirects=follow, headers=headers) as response:
            page = Page(response.status, await response.text(), dict(response.headers), str(response.url))
        found = CSRF_FIELD.search(page.text)
        if found:
            self.csrf_token = html.unescape(found[1])
        return page

    @property
    def session_token(self) -> str | None:
        """The session cookie's token, if the client holds one."""
        return next((cookie.value for cookie in self.http.cookie_jar if cookie.key == "userreg_console"), None)

    async def sign_in(self, email: str, password: str) -> Page:
        return await self.post("/sign-in", {"email": email, "password": password}, csrf=False)
