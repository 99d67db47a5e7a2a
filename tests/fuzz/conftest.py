"""Fixtures of the fuzz tests: the real services on real sockets, and the apps, users and links that
make a good share of the fuzzed requests valid (otherwise a fuzzer only ever meets 2002).

The services run on an event loop of their own, in a thread: the fuzzers (schemathesis' requests
transport, Hypothesis' `@given`) are synchronous and would otherwise block the loop that serves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import strategies as st

from userreg.shared.confirmations import issue_confirmation
from userreg.shared.db import App, User, UserStatus
from userreg.shared.email_changes import request_email_change
from userreg.shared.passwords import new_password_reset
from userreg.shared.settings import Settings
from userreg.shared.tokens import new_guid

# `USERREG_FULL_FAULTS=1` (make test-full) runs every fuzzer with many more examples.
FULL = os.environ.get("USERREG_FULL_FAULTS") == "1"
START_TIMEOUT_SECONDS = 30.0
PASSWORD = "fuzz-password-1"
# Every link's user is called this: a page that shows it unescaped is a bug.
MARKUP_NAME = "Fuzz <b>User</b>"


class ServiceThread:
    """An aiohttp application served on 127.0.0.1 (a free port) from a thread with its own loop.

    The application's `cleanup_ctx` runs on that loop, as under `web.run_app`; `stop()` closes
    the site and runs the cleanups before the thread ends.
    """

    def __init__(self, app: web.Application, name: str) -> None:
        self._app = app
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceThread:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_SECONDS):
            raise AssertionError(f"{self._thread.name} did not start within {START_TIMEOUT_SECONDS}s")
        if self._error is not None:
            raise AssertionError(f"{self._thread.name} failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(START_TIMEOUT_SECONDS)
        if self._thread.is_alive():
            raise AssertionError(f"{self._thread.name} did not stop within {START_TIMEOUT_SECONDS}s")
        if self._error is not None:
            raise AssertionError(f"{self._thread.name} failed") from self._error

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        except BaseException as error:
            self._error = error
        finally:
            self._started.set()
            # What the app's cleanups left running (a part still stopping) ends here, not with
            # the loop's garbage: as `asyncio.run` does, cancel the rest and let it finish.
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.wait(leftovers, timeout=START_TIMEOUT_SECONDS))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _run(self) -> None:
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._started.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()


def serve(app: web.Application, name: str) -> ServiceThread:
    return ServiceThread(app, name).start()


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each as often as its weight says (`st.one_of` draws evenly, and
    Hypothesis favours the first choice when it simplifies: put the common case first)."""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(
        lambda strategy: strategy
    )


# --- the registration API's world ----------------------------------------------------------------


@dataclass
class Tenant:
    """One app as the fuzzer knows it: its keys and some of its users."""

    app: App
    # identity → objectId of users that have a password (PASSWORD)
    users: dict[str, str] = field(default_factory=dict)
    guests: list[str] = field(default_factory=list)
    # user-tokens of its users' and guests' sessions (the fuzzer checks them and logs some out)
    tokens: list[str] = field(default_factory=list)

    @property
    def app_id(self) -> str:
        return self.app.app_id


@dataclass
class RegistrationWorld:
    base_url: str
    tenants: list[Tenant]


def unique_email(prefix: str = "fuzz") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
async def registration_world(settings: Settings, make_app) -> AsyncIterator[RegistrationWorld]:
    """The registration service on a real socket, with apps of three kinds (open, confirming
    emails, closed with a fixed schema) and, in the first two, users and guests made through the
    API itself, and sessions of the open app's users (the fuzzer then disables, enables, confirms,
    logs them in and out, checks their tokens and asks for their password-reset links)."""
    from userreg.registration.app import create_app

    apps = [
        await make_app("Fuzz Open"),
        await make_app("Fuzz Confirming", email_confirmation_required=True),
        await make_app("Fuzz Closed", registration_enabled=False, dynamic_schema=False),
    ]
    service = serve(create_app(settings), "fuzz-registration")
    try:
        tenants = [Tenant(app) for app in apps]
        async with aiohttp.ClientSession(base_url=service.base_url) as http:
            for tenant in tenants[:2]:
                await _populate(http, tenant)
        yield RegistrationWorld(service.base_url, tenants)
    finally:
        service.stop()


async def _populate(http: aiohttp.ClientSession, tenant: Tenant, users: int = 6, guests: int = 3) -> None:
    base = f"/{tenant.app_id}/{tenant.app.rest_api_key}/users"
    for _ in range(users):
        email = unique_email()
        async with http.post(f"{base}/register", json={"email": email, "password": PASSWORD}) as response:
            assert response.status == 200, await response.text()
            tenant.users[email] = (await response.json())["objectId"]
    for _ in range(guests):
        async with http.post(f"{base}/register/guest") as response:
            assert response.status == 200, await response.text()
            guest = await response.json()
            tenant.guests.append(guest["objectId"])
            tenant.tokens.append(guest["user-token"])
    for email in list(tenant.users):
        for _ in range(2):
            async with http.post(f"{base}/login", json={"login": email, "password": PASSWORD}) as response:
                if response.status == 200:  # a user of the confirming app cannot log in yet (9002)
                    tenant.tokens.append((await response.json())["user-token"])


# --- confirmation-web's world --------------------------------------------------------------------


@dataclass(frozen=True)
class LinkCase:
    app_id: str
    token: str
    state: str  # what the link was made as: pending, expired, confirmed, disabled, guest


@dataclass
class ConfirmationWorld:
    base_url: str
    app_ids: list[str]
    links: list[LinkCase]  # confirmation links
    public_origin: str
    reset_links: list[LinkCase] = field(default_factory=list)  # password-reset links
    change_links: list[LinkCase] = field(default_factory=list)  # email-change links


@pytest.fixture
async def confirmation_world(settings: Settings, make_app, sessions) -> AsyncIterator[ConfirmationWorld]:
    """confirmation-web on a real socket, with confirmation links and password-reset links of every
    state in two apps (one confirming on GET) for the fuzzer to open, confirm, reset and renew."""
    from userreg.confirmation_web.app import create_app

    apps = [
        await make_app("Fuzz Links", email_confirmation_required=True),
        await make_app("Fuzz Links GET", email_confirmation_required=True, confirm_on_get=True),
    ]
    links: list[LinkCase] = []
    reset_links: list[LinkCase] = []
    change_links: list[LinkCase] = []
    pending = UserStatus.EMAIL_CONFIRMATION_PENDING
    states = {
        "pending": pending,
        "expired": pending,
        "confirmed": UserStatus.ENABLED,
        "disabled": UserStatus.DISABLED,
        "guest": UserStatus.GUEST,
    }
    for app in apps:
        for state, status in states.items():
            for _ in range(3):
                for made, reset in ((links, False), (reset_links, True)):
                    token = await _make_link(sessions, settings, app, status, expired=state == "expired", reset=reset)
                    made.append(LinkCase(app.app_id, token, state))
        # Email-change links: pending, expired and a disabled user's, and pairs of users waiting
        # for one address (the first confirmed gets it, the other's link then fails).
        for state, status in (
            ("pending", UserStatus.ENABLED),
            ("expired", UserStatus.ENABLED),
            ("disabled", UserStatus.DISABLED),
            ("contested", UserStatus.ENABLED),
        ):
            for _ in range(2):
                address = unique_email("changed")
                for _ in range(2 if state == "contested" else 1):
                    token = await _make_change_link(
                        sessions, settings, app, status, address, expired=state == "expired"
                    )
                    change_links.append(LinkCase(app.app_id, token, state))
    service = serve(create_app(settings), "fuzz-confirmation-web")
    try:
        yield ConfirmationWorld(
            service.base_url,
            [app.app_id for app in apps],
            links,
            settings.public_confirmation_url.lower(),
            reset_links,
            change_links,
        )
    finally:
        service.stop()


async def _add_user(session, app: App, status: UserStatus, email: str) -> tuple[App, User]:
    """A user of `app` with `status` whose name is markup (it must come out escaped); the app as stored."""
    db_app = await session.get(App, app.app_id)
    user = User(
        object_id=new_guid(),
        app_id=app.app_id,
        identity_key=email.lower(),
        properties={"email": email, "name": MARKUP_NAME},
        password_hash="not-a-real-hash",
        status=status,
    )
    session.add(user)
    await session.flush()
    return db_app, user


async def _make_link(
    sessions, settings: Settings, app: App, status: UserStatus, *, expired: bool, reset: bool = False
) -> str:
    """A user of `app` with `status` and one confirmation link (or password-reset link, as
    `restorepassword` issues one); the link's token."""
    async with sessions() as session, session.begin():
        db_app, user = await _add_user(session, app, status, unique_email("link"))
        issued = datetime.now(UTC)
        if reset:
            if expired:
                issued -= timedelta(seconds=db_app.password_reset_link_ttl + 60)
            row, link = new_password_reset(db_app, user, settings.public_confirmation_url, issued)
            session.add(row)
            return link.url.rsplit("/", 1)[1]
        if expired:
            issued -= timedelta(seconds=db_app.confirmation_link_ttl + 60)
        confirmation = issue_confirmation(session, db_app, user, settings.public_confirmation_url, issued)
    return confirmation.url.rsplit("/", 1)[1]


async def _make_change_link(
    sessions, settings: Settings, app: App, status: UserStatus, address: str, *, expired: bool
) -> str:
    """A user of `app` with `status` and an email-change link to `address` (as an update in an app
    that confirms emails issues one); the link's token."""
    async with sessions() as session, session.begin():
        db_app, user = await _add_user(session, app, status, unique_email("changing"))
        issued = datetime.now(UTC)
        if expired:
            issued -= timedelta(seconds=db_app.confirmation_link_ttl + 60)
        event = await request_email_change(
            session, db_app, user, address, address.lower(), settings.public_confirmation_url, 0, issued
        )
    assert event.confirmation is not None
    return event.confirmation.url.rsplit("/", 1)[1]


class Tally:
    """What a fuzzer sent and what came back: requests by operation and by (status, code)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.by_operation: Counter[str] = Counter()
        self.by_answer: Counter[str] = Counter()

    def record(self, operation: str, status: int, code: object = None) -> None:
        self.by_operation[operation] += 1
        self.by_answer[f"{status}" if code is None else f"{status}/{code}"] += 1

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())

    def summary(self) -> str:
        operations = ", ".join(f"{name}: {count}" for name, count in sorted(self.by_operation.items()))
        answers = ", ".join(f"{answer}: {count}" for answer, count in sorted(self.by_answer.items()))
        return (
            f"{self.name}: {self.total} requests{' (full run)' if FULL else ''}\n"
            f"  by operation: {operations}\n  by answer (HTTP/code): {answers}"
        )


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "fuzz"


def report(request: pytest.FixtureRequest, name: str, text: str) -> None:
    """Print `text` even while output is captured, and keep it in test-artifacts/fuzz/<name>.txt
    (under xdist a worker's output does not reach the terminal)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(f"\n{text}", flush=True)


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """One tally for a test module's fuzzers, printed when the module is done. (Should pytest-xdist
    split a module over workers after all, each worker prints and keeps its own share.)"""
    name = request.module.__name__.rsplit(".", 1)[-1]
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    counts = Tally(f"{name} (worker {worker})" if worker else name)
    yield counts
    report(request, f"{name}.{worker}" if worker else name, counts.summary())
