"""Signing in and out. The sign-in page is public; every other page redirects to it with `next`
(where to go back to). Wrong emails and wrong passwords get the same answer."""

from __future__ import annotations

import logging
import math

from aiohttp import web

from userreg.console import auth
from userreg.console.keys import OPERATOR_SESSIONS
from userreg.console.rules.redirects import HOME, safe_next
from userreg.console.views.common import operator, posted, render
from userreg.shared.hashing import HashingBusy

logger = logging.getLogger(__name__)

WRONG = "Email or password wrong."
TOO_MANY = "Too many sign-in attempts. Wait a while, then try again."


async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(location=HOME)


async def sign_in_page(request: web.Request) -> web.Response:
    next_path = safe_next(request.query.get("next"))
    token = auth.session_token(request)
    if token and await request.app[OPERATOR_SESSIONS].operator_of(token) is not None:
        raise web.HTTPSeeOther(location=next_path)
    return render(request, "sign_in.html", next=next_path, email="", error=None)


async def sign_in(request: web.Request) -> web.Response:
    email, password, next_value = await posted(request, "email", "password", "next")
    try:
        outcome = await request.app[OPERATOR_SESSIONS].sign_in(email, password, auth.client_of(request))
    except HashingBusy as busy:
        wait = max(1, math.ceil(busy.retry_after_seconds))
        response = render(
            request,
            "sign_in.html",
            status=503,
            next=safe_next(next_value),
            email=email,
            error=f"The console is busy. Try again in {wait} seconds.",
        )
        response.headers["Retry-After"] = str(wait)
        return response
    if outcome.retry_after is not None:
        logger.info("refused a sign-in: too many attempts")
        response = render(request, "sign_in.html", status=429, next=safe_next(next_value), email=email, error=TOO_MANY)
        response.headers["Retry-After"] = str(outcome.retry_after)
        return response
    if outcome.operator is None:
        logger.info("refused a sign-in: email or password wrong")
        return render(request, "sign_in.html", status=401, next=safe_next(next_value), email=email, error=WRONG)
    logger.info("operator %s signed in", outcome.operator.email)
    response = web.Response(status=303, headers={"Location": safe_next(next_value)})
    auth.set_session_cookie(request, response, outcome.operator.session_token)
    return response


async def sign_out(request: web.Request) -> web.Response:
    signed_in = operator(request)
    await request.app[OPERATOR_SESSIONS].sign_out(signed_in.session_token)
    logger.info("operator %s signed out", signed_in.email)
    response = web.Response(status=303, headers={"Location": "/sign-in"})
    auth.clear_session_cookie(request, response)
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", home, name="home")
    router.add_get("/sign-in", sign_in_page, name="sign_in_page")
    router.add_post("/sign-in", sign_in, name="sign_in")
    router.add_post("/sign-out", sign_out, name="sign_out")
