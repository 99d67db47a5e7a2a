"""A small client of the registration API (docs/api.md, register), as a client app or a server would call it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

# The password every system test registers with: the services must never show it anywhere.
PASSWORD = "correct horse battery"
# The password a reset sets (docs/api.md, Sessions and password recovery): never shown anywhere either.
NEW_PASSWORD = "staple battery horse correct"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the decoded JSON, or the text when it is not JSON ("" for an empty body)

    @property
    def code(self) -> int | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    def is_envelope(self) -> bool:
        """`{"code": int, "message": str}` and nothing else: the error shape of every failure."""
        return (
            isinstance(self.body, dict)
            and set(self.body) == {"code", "message"}
            and isinstance(self.body["code"], int)
            and isinstance(self.body["message"], str)
        )


@dataclass(frozen=True)
class AppKeys:
    app_id: str
    rest_api_key: str
    server_api_key: str

    @classmethod
    def of(cls, app: Any) -> AppKeys:
        """From an ORM `App` or the JSON `userreg app create` prints."""
        if isinstance(app, dict):
            return cls(app["appId"], app["restApiKey"], app["serverApiKey"])
        return cls(app.app_id, app.rest_api_key, app.server_api_key)


class Api:
    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    def url(self, app: Any, path: str, *, server: bool = False) -> str:
        keys = AppKeys.of(app)
        key = keys.server_api_key if server else keys.rest_api_key
        return f"{self.base_url}/{keys.app_id}/{key}{path}"

    async def _call(self, method: str, url: str, body: Any = None, **kwargs: Any) -> Answer:
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json", **kwargs.get("headers", {})}
        async with self.http.request(method, url, **kwargs) as response:
            text = await response.text()
            try:
                decoded: Any = json.loads(text) if text else ""
            except ValueError:
                decoded = text
            return Answer(response.status, decoded)

    async def register(self, app: Any, properties: dict[str, Any], **kwargs: Any) -> Answer:
        return await self._call("POST", self.url(app, "/users/register"), properties, **kwargs)

    async def login(self, app: Any, login: str, password: str) -> Answer:
        return await self._call("POST", self.url(app, "/users/login"), {"login": login, "password": password})

    async def resend_confirmation(self, app: Any, identity: str) -> Answer:
        path = f"/users/resendconfirmation/{quote(identity, safe='')}"
        return await self._call("POST", self.url(app, path))

    async def restore_password(self, app: Any, identity: str) -> Answer:
        return await self._call("GET", self.url(app, f"/users/restorepassword/{quote(identity, safe='')}"))

    async def is_valid_user_token(self, app: Any, token: str) -> Answer:
        return await self._call("GET", self.url(app, f"/users/isvalidusertoken/{quote(token, safe='')}"))

    async def logout(self, app: Any, token: str) -> Answer:
        return await self._call("GET", self.url(app, "/users/logout"), headers={"user-token": token})

    async def set_status(self, app: Any, object_id: str, status: str) -> Answer:
        return await self._call("PUT", self.url(app, f"/users/{object_id}/status", server=True), {"userStatus": status})

    async def ready(self) -> Answer:
        return await self._call("GET", f"{self.base_url}/ready")
