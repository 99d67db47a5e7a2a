"""The official Backendless JavaScript SDK (npm `backendless`, pinned in tests/sdk/) against the
running system: the one user flow of tests/sdk/user_flow.js, its input, what each of its calls must
answer, and the two ways it runs — as a Node process, and in a web app on an origin of its own
(a small static server of the SDK's browser build; the tests drive it in Chromium)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.email_change import confirm_email_change
from tests.support.api import PASSWORD, AppKeys
from tests.support.polling import free_port
from tests.support.system import System, unique_address

SDK_DIR = Path(__file__).resolve().parents[1] / "sdk"
SDK_BROWSER_BUILD = SDK_DIR / "node_modules" / "backendless" / "dist" / "backendless.js"
NODE_TIMEOUT = 60.0
# What the SDK logs (console.error) when `GET /info` fails at initApp.
APP_INFO_COMPLAINT = "could not load backendless app info"
# What the SDK's browser build rejects with when the browser withholds an answer (CORS).
NETWORK_ERROR = "Network Error"
# What the SDK throws, without asking the server, for `verifyPassword` without a session and for a
# `findById` without an objectId.
NOT_LOGGED_IN = "In order to check password you have to be logged in"
NO_OBJECT_ID = "Object Id must be provided and must be a string or number or an object of primary keys."
NEW_PASSWORD = "a new password, changed through update"
# The Users schema of a new app once the flow's user has a city.
USER_CLASS = {"names": ["blUserLocale", "city", "email", "name", "password"], "identity": ["email"]}


def require_sdk() -> None:
    """The SDK tests never skip: without the installed SDK (or Node) they fail and say what to run."""
    if not SDK_BROWSER_BUILD.exists():
        pytest.fail(f"the Backendless SDK is not installed in {SDK_DIR}: run `make sdk` (npm ci)")


@dataclass(frozen=True)
class Addresses:
    user: str  # registers in the open app, logs in, asks for a password reset
    pending: str  # registers in the confirming app during the flow
    aged_pending: str  # registered in the confirming app before the flow, its cool-down passed
    confirmed: str  # registered and confirmed in the confirming app before the flow
    changed: str  # the address `confirmed` changes its email to during the flow
    unknown: str  # nobody's


@dataclass(frozen=True)
class UserFlow:
    """The apps and addresses of one run of tests/sdk/user_flow.js."""

    open: Any  # no email confirmation
    confirming: Any  # email confirmation required
    closed: Any  # registration disabled
    addresses: Addresses

    def input(self, server_url: str, *, with_server_key: bool = False) -> dict[str, Any]:
        """user_flow.js's input; `with_server_key` adds the server's calls (and the server keys)."""

        def keys(app: Any) -> dict[str, str]:
            app_keys = AppKeys.of(app)
            server_key = {"serverApiKey": app_keys.server_api_key} if with_server_key else {}
            return {"appId": app_keys.app_id, "restApiKey": app_keys.rest_api_key, **server_key}

        return {
            "serverURL": server_url,
            "apps": {"open": keys(self.open), "confirming": keys(self.confirming), "closed": keys(self.closed)},
            "addresses": {
                "user": self.addresses.user,
                "pending": self.addresses.pending,
                "agedPending": self.addresses.aged_pending,
                "confirmed": self.addresses.confirmed,
                "changed": self.addresses.changed,
                "unknown": self.addresses.unknown,
            },
            "password": PASSWORD,
            "wrongPassword": "not the password",
            "newPassword": NEW_PASSWORD,
            "withServerKey": with_server_key,
        }

    @property
    def all_apps(self) -> list[Any]:
        return [self.open, self.confirming, self.closed]


async def prepare_user_flow(system: System, api: Any, make_app: Any, age_links: Any, label: str) -> UserFlow:
    """Three apps and the addresses of one flow; the aged pending user is registered, its confirmation
    email received, and its links backdated past the resend cool-down."""
    flow = UserFlow(
        open=await make_app(f"{label} Open"),
        confirming=await make_app(f"{label} Confirming", email_confirmation_required=True),
        closed=await make_app(f"{label} Closed", registration_enabled=False),
        addresses=Addresses(
            *(
                unique_address(f"{label.lower().replace(' ', '-')}-{role}")
                for role in ("user", "pending", "aged", "confirmed", "changed", "unknown")
            )
        ),
    )
    confirmed = await api.register(flow.confirming, {"email": flow.addresses.confirmed, "password": PASSWORD})
    assert confirmed.status == 200, confirmed
    enabled = await api.set_status(flow.confirming, confirmed.body["objectId"], "ENABLED")
    assert enabled.status == 200, enabled
    aged = await api.register(flow.confirming, {"email": flow.addresses.aged_pending, "password": PASSWORD})
    assert aged.status == 200, aged
    await system.wait_for_emails(flow.addresses.aged_pending)
    await age_links(aged.body["objectId"], 61)
    return flow


def ok(value: Any) -> tuple:
    return ("ok", value)


def error(code: int, status: int) -> tuple:
    return ("error", code, status)


def outcome(result: dict[str, Any]) -> tuple:
    """A step's result as the expectations spell it: ("ok", value) or ("error", code, HTTP status);
    an error without a code keeps its message (a CORS failure: "Network Error")."""
    if result["ok"]:
        return ok(result["value"])
    if result["code"] is None:
        return ("error", None, result["status"], result["message"])
    return error(result["code"], result["status"])


def outcomes(results: dict[str, dict[str, Any]]) -> dict[str, tuple]:
    return {name: outcome(result) for name, result in results.items() if name != "app info"}


def differences(results: dict[str, dict[str, Any]], expected: dict[str, tuple]) -> list[str]:
    """One line per step that did not answer as expected (empty when all did), for the failure message."""
    actual = outcomes(results)
    return [
        f"{name}: got {actual.get(name, 'nothing')}, expected {wanted}"
        for name, wanted in expected.items()
        if actual.get(name) != wanted
    ] + [f"{name}: not expected" for name in actual.keys() - expected.keys()]


def expected_outcomes(addresses: Addresses, *, with_server_key: bool = False) -> dict[str, tuple]:
    """What every call of the flow answers through the SDK (docs/api.md, register and Sessions and
    password recovery; the codes and statuses of README's table). An empty 200 body reaches the
    SDK's caller as ""."""

    def user(email: str | None, status: str, *, token: bool) -> dict[str, Any]:
        return {"email": email, "userStatus": status, "hasObjectId": True, "hasUserToken": token, "hasPassword": False}

    return {
        "register": ok(user(addresses.user, "ENABLED", token=False)),
        "register the same identity again": error(3033, 409),
        "login with a wrong password": error(3003, 401),
        "login with an unknown identity": error(3003, 401),
        "login": ok(user(addresses.user, "ENABLED", token=True)),
        "isValidLogin after login": ok(True),
        "isvalidusertoken of the session": ok(True),
        "getCurrentUser(true)": ok(user(addresses.user, "ENABLED", token=True)),
        "update": ok({"email": addresses.user, "name": "Ada Lovelace", "city": "London", "hasPassword": False}),
        "verifyPassword": ok(True),
        "verifyPassword with a wrong password": ok(False),
        "describeUserClass": ok(USER_CLASS),
        "login again": ok(user(addresses.user, "ENABLED", token=True)),
        "update the password": ok(False),
        "isvalidusertoken of the first session after the password change": ok(False),
        "isValidLogin after the password change": ok(True),
        "verifyPassword with the new password": ok(True),
        "login with the old password": error(3003, 401),
        "update the password back": ok(False),
        "logout": ok(None),
        "isValidLogin after logout": ok(False),
        "isvalidusertoken of the ended session": ok(False),
        "logout with the ended session": error(3064, 401),
        "restorePassword": ok(""),
        "restorePassword again at once": error(9001, 429),
        "restorePassword of an unknown identity": error(3020, 404),
        "loginAsGuest": ok(user(None, "GUEST", token=True)),
        "isValidLogin as a guest": ok(True),
        "update another user": error(3029, 403),
        "read another user": error(3029, 403),
        "logout as a guest": ok(None),
        "resendEmailConfirmation where the app does not confirm emails": error(3103, 400),
        "register where the app confirms emails": ok(
            user(addresses.pending, "EMAIL_CONFIRMATION_PENDING", token=False)
        ),
        "login before confirming": error(9002, 403),
        "resendEmailConfirmation within the cool-down": error(9001, 429),
        "resendEmailConfirmation": ok(""),
        "resendEmailConfirmation of an unknown identity": error(3104, 404),
        "login where the app confirms emails": ok(user(addresses.confirmed, "ENABLED", token=True)),
        "update the email where the app confirms emails": ok({"email": addresses.confirmed}),
        "getCurrentUser(true) while the new address waits": ok(addresses.confirmed),
        "logout where the app confirms emails": ok(None),
        "register where registration is disabled": error(3009, 403),
    } | (
        {
            "disableUser": ok(""),
            "login while disabled": error(3090, 403),
            "enableUser": ok(""),
            "updateUserStatus to ENABLED again": ok(""),
            "login once enabled again": ok(user(addresses.user, "ENABLED", token=True)),
            "logout once enabled again": ok(None),
            "createEmailConfirmationURL is a confirmation link": ok(True),
        }
        if with_server_key
        else {}
    )


def blocked_outcomes(addresses: Addresses) -> dict[str, tuple]:
    """The same flow from an origin the apps do not allow: the browser withholds every answer, so each
    call fails as the SDK's "Network Error" without a code; `isValidLogin` asks nothing without a
    session and answers false."""
    asked_nothing = {
        "getCurrentUser(true)": ok(None),
        "read another user": ("error", None, None, NO_OBJECT_ID),
        "getCurrentUser(true) while the new address waits": ok(None),
    }
    return {
        name: asked_nothing.get(name)
        or (
            ok(False)
            if name.startswith("isValidLogin")
            else ("error", None, None, NOT_LOGGED_IN)
            if name.startswith("verifyPassword")
            else ("error", None, None, NETWORK_ERROR)
        )
        for name in expected_outcomes(addresses)
    }


def check_app_info(results: dict[str, dict[str, Any]], app: Any) -> None:
    """`GET /info`, as the SDK loaded it at initApp, describes the app."""
    info = results["app info"]
    assert info["ok"], info
    assert info["value"]["appName"] == app.name


async def check_flow_emails(system: System, flow: UserFlow) -> None:
    """What the flow made the mailer send: the two "password changed" notices of the changes made
    through update and the reset link asked for, the aged pending user's second confirmation link,
    and the link that confirms the changed email address (which is then confirmed)."""
    emails = await system.wait_for_emails(flow.addresses.user, 3)
    [reset] = [email for email in emails if "/reset-password/" in email.text]
    link = system.reset_link_in(reset)
    assert link.startswith(f"{system.confirmation_url}/{AppKeys.of(flow.open).app_id}/reset-password/")
    first, second = await system.wait_for_emails(flow.addresses.aged_pending, 2)
    assert system.link_in(second) != system.link_in(first)
    await confirm_email_change(system, flow)


@dataclass(frozen=True)
class NodeRun:
    results: dict[str, dict[str, Any]]
    stderr: str


async def run_in_node(flow_input: dict[str, Any]) -> NodeRun:
    """tests/sdk/node_flow.js with `flow_input` on stdin: its results and what it logged."""
    require_sdk()
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install Node.js (the SDK tests run the SDK in Node)")
    process = await asyncio.create_subprocess_exec(
        node,
        str(SDK_DIR / "node_flow.js"),
        cwd=SDK_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(json.dumps(flow_input).encode()), NODE_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"node_flow.js did not finish within {NODE_TIMEOUT}s") from None
    assert process.returncode == 0, f"node_flow.js failed ({process.returncode}): {err.decode()}"
    return NodeRun(json.loads(out), err.decode(errors="replace"))


@contextlib.asynccontextmanager
async def web_app_origin() -> AsyncIterator[str]:
    """A web app of its own origin (another port than the API's): tests/sdk/browser.html with the
    SDK's browser build and user_flow.js. Yields the origin, e.g. http://127.0.0.1:41234."""
    require_sdk()
    files = {
        "/": SDK_DIR / "browser.html",
        "/backendless.js": SDK_BROWSER_BUILD,
        "/user_flow.js": SDK_DIR / "user_flow.js",
    }

    async def serve(request: web.Request) -> web.FileResponse:
        return web.FileResponse(files[request.path])

    server = web.Application()
    for path in files:
        server.router.add_get(path, serve)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
