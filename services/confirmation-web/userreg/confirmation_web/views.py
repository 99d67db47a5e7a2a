"""The HTTP edge: decode the request, call one service action, render its outcome. Nothing else.

A POST is admitted first (`rules.origin`: does it come from our own page?) and only then is its
body read, so that a refused cross-site POST is answered 403 whatever its body holds. The same holds
for the password-reset pages, whose service is `PasswordResets`."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from userreg.confirmation_web.keys import (
    CONFIRMATIONS,
    EMAIL_CHANGES,
    PAGES,
    PASSWORD_RESETS,
    PUBLIC_ORIGIN,
    RELAY,
    REPOSITORY,
)
from userreg.confirmation_web.model import Failure, Outcome
from userreg.confirmation_web.rules.origin import is_same_origin_post
from userreg.shared.runtime import ops

logger = logging.getLogger(__name__)


def _accept_language(request: web.Request) -> str | None:
    return request.headers.get("Accept-Language")


async def _page(request: web.Request, outcome: Outcome) -> web.Response:
    return await request.app[PAGES].render(outcome, _accept_language(request))


async def open_link(request: web.Request) -> web.Response:
    """GET (and HEAD) of a confirmation link."""
    outcome = await request.app[CONFIRMATIONS].open(
        request.match_info["app_id"], request.match_info["token"], request.method, request.headers
    )
    return await _page(request, outcome)


# What aiohttp raises for a form it cannot parse: bytes not in the declared charset, an unknown
# charset or transfer encoding, a multipart body without (or with a broken) boundary or with bad
# part headers. Such a form carries no token we can read; an oversized one is still a 413.
UNREADABLE_FORM = (ValueError, LookupError, RuntimeError, BadHttpMessage)


async def _posted(request: web.Request, *names: str) -> list[str]:
    """The form's text fields of these names ("" for one that is absent, a file, or unreadable)."""
    try:
        form = await request.post()
    except UNREADABLE_FORM:
        return ["" for _ in names]
    return [value if isinstance(value := form.get(name), str) else "" for name in names]


async def confirm(request: web.Request) -> web.Response:
    """The pending page's POST (sent by its script, or by its button)."""
    return await _post(request, "confirm")


async def resend(request: web.Request) -> web.Response:
    """The expired page's "send a new link" POST."""
    return await _post(request, "resend")


async def _post(request: web.Request, action: str) -> web.Response:
    confirmations = request.app[CONFIRMATIONS]
    app_id = request.match_info["app_id"]
    if not _admitted(request, action):
        outcome = await confirmations.failed(app_id, Failure.CROSS_SITE, status=403)
    else:
        [token] = await _posted(request, "token")
        act = confirmations.confirm if action == "confirm" else confirmations.resend
        outcome = await act(app_id, token)
    return await _page(request, outcome)


def _admitted(request: web.Request, action: str) -> bool:
    """Whether a POST comes from our own page (`rules.origin`); a refused one is logged."""
    if is_same_origin_post(request.headers, request.app[PUBLIC_ORIGIN]):
        return True
    # %r: the app id comes from the path, and must not be able to forge a log line.
    logger.info("refused a cross-site %s POST for app %r", action, request.match_info["app_id"][:64])
    return False


async def link_without_token(request: web.Request) -> web.Response:
    outcome = await request.app[CONFIRMATIONS].failed(request.match_info["app_id"], Failure.MALFORMED)
    return await _page(request, outcome)


async def open_reset_link(request: web.Request) -> web.Response:
    """GET (and HEAD) of a password-reset link: its page, never a change."""
    app_id, token = request.match_info["app_id"], request.match_info["token"]
    outcome = await request.app[PASSWORD_RESETS].open(app_id, token)
    return await _page(request, outcome)


async def reset_password(request: web.Request) -> web.Response:
    """The reset form's POST: token, password and its repeat."""
    resets = request.app[PASSWORD_RESETS]
    app_id = request.match_info["app_id"]
    if not _admitted(request, "reset-password"):
        outcome = await resets.failed(app_id, Failure.CROSS_SITE, status=403)
    else:
        token, password, repeat = await _posted(request, "token", "password", "repeat")
        outcome = await resets.set_password(app_id, token, password, repeat)
    return await _page(request, outcome)


async def resend_reset_link(request: web.Request) -> web.Response:
    """The reset's expired page: "email me a new link"."""
    resets = request.app[PASSWORD_RESETS]
    app_id = request.match_info["app_id"]
    if not _admitted(request, "reset-resend"):
        outcome = await resets.failed(app_id, Failure.CROSS_SITE, status=403)
    else:
        [token] = await _posted(request, "token")
        outcome = await resets.resend(app_id, token)
    return await _page(request, outcome)


async def reset_link_without_token(request: web.Request) -> web.Response:
    outcome = await request.app[PASSWORD_RESETS].failed(request.match_info["app_id"], Failure.MALFORMED)
    return await _page(request, outcome)


async def open_email_change(request: web.Request) -> web.Response:
    """GET (and HEAD) of an email-change link: its page, never a change."""
    outcome = await request.app[EMAIL_CHANGES].open(request.match_info["app_id"], request.match_info["token"])
    return await _page(request, outcome)


async def change_email(request: web.Request) -> web.Response:
    """The email-change page's POST (sent by its script, or by its button)."""
    changes = request.app[EMAIL_CHANGES]
    app_id = request.match_info["app_id"]
    if not _admitted(request, "change-email"):
        outcome = await changes.failed(app_id, Failure.CROSS_SITE)
    else:
        [token] = await _posted(request, "token")
        outcome = await changes.confirm(app_id, token)
    return await _page(request, outcome)


async def email_change_without_token(request: web.Request) -> web.Response:
    outcome = await request.app[EMAIL_CHANGES].failed(request.match_info["app_id"], Failure.MALFORMED)
    return await _page(request, outcome)


async def not_found(request: web.Request) -> web.Response:
    """Any other path under the service is a broken link: show the failed page, not a bare 404."""
    outcome = await request.app[CONFIRMATIONS].failed(None, Failure.UNKNOWN)
    return await _page(request, outcome)


# The operations endpoints, as every service answers them. Ready: the database answers through
# the service's own read pool, and the outbox relay (the events of confirmations leave through it)
# runs and relays through its open channel to RabbitMQ. A process started without its relay (a
# test that looks at the outbox rows) does not use the broker at all, so nothing of it waits for one.
async def _select_one(app: web.Application) -> object:
    return await app[REPOSITORY].select_one()


health = ops.health
ready = ops.ready_view(database=ops.reachable(_select_one), broker=ops.running(RELAY, optional=True))
metrics = ops.metrics_view()
