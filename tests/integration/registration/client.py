"""A small client of one app's registration API through an aiohttp test client: every call returns
(status, decoded body)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from userreg.shared.db import App


class Api:
    """Calls one app's API through a test client; every call returns (status, decoded body)."""

    def __init__(self, client: TestClient, app: App) -> None:
        self.client = client
        self.app = app

    def path(self, path: str, *, key: str | None = None, app_id: str | None = None) -> str:
        return f"/{app_id or self.app.app_id}/{key or self.app.rest_api_key}{path}"

    async def call(
        self, method: str, path: str, *, key: str | None = None, app_id: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        async with self.client.request(method, self.path(path, key=key, app_id=app_id), **kwargs) as response:
            raw = await response.read()
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, raw

    async def register(self, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        if body is not None:
            kwargs["json"] = body
        return await self.call("POST", "/users/register", **kwargs)

    async def login(self, login: str, password: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", "/users/login", json={"login": login, "password": password}, **kwargs)

    async def signed_in(self, email: str, password: str = "s3cret", **properties: Any) -> dict:
        """A new user of the app, registered and logged in: the login's answer (with its user-token)."""
        status, body = await self.register({"email": email, "password": password, **properties})
        assert status == 200, body
        status, body = await self.login(email, password)
        assert status == 200, body
        return body

    async def guest(self, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", "/users/register/guest", **kwargs)

    async def set_status(self, object_id: str, status: str, **kwargs: Any) -> tuple[int, Any]:
        kwargs.setdefault("key", self.app.server_api_key)
        return await self.call("PUT", f"/users/{object_id}/status", json={"userStatus": status}, **kwargs)

    async def resend(self, identity: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", f"/users/resendconfirmation/{identity}", **kwargs)

    async def confirmation_url(self, identity: str, **kwargs: Any) -> tuple[int, Any]:
        kwargs.setdefault("key", self.app.server_api_key)
        return await self.call("POST", f"/users/createEmailConfirmationURL/{identity}", **kwargs)

    async def info(self, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("GET", "/info", **kwargs)

    async def is_valid_token(self, token: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("GET", f"/users/isvalidusertoken/{token}", **kwargs)

    async def logout(self, token: str | None, **kwargs: Any) -> tuple[int, Any]:
        if token is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), "user-token": token}
        return await self.call("GET", "/users/logout", **kwargs)

    async def restore_password(self, identity: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("GET", f"/users/restorepassword/{identity}", **kwargs)

    async def update(self, object_id: str, body: Any, *, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        if token is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), "user-token": token}
        return await self.call("PUT", f"/users/{object_id}", json=body, **kwargs)

    async def read_user(self, object_id: str, *, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        if token is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), "user-token": token}
        return await self.call("GET", f"/data/Users/{object_id}", **kwargs)

    async def verify_password(self, password: Any, *, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        if token is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), "user-token": token}
        return await self.call("POST", "/users/verifypassowrd", json={"password": password}, **kwargs)

    async def user_class_props(self, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("GET", "/users/userclassprops", **kwargs)
