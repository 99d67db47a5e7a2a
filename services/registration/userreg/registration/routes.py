"""The one table of the service's routes: the router and the OpenAPI document are both built from it,
so what is documented is what is served (methods, paths, bodies, every status and code)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from userreg.registration import api_docs, errors, views

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# An error that can answer an operation: its class, or (class, HTTP status) for codes whose status varies.
ErrorSpec = type[errors.ApiError] | tuple[type[errors.ApiError], int]

APP_BASE = "/{appId}/{apiKey}"
# Every API operation can meet these: a wrong app or key, a path that does not resolve, a failure on
# our side, and the database being away.
API_ERRORS: tuple[ErrorSpec, ...] = (
    errors.InvalidApplication,
    errors.NoSuchRoute,
    (errors.RegistrationError, 500),
    (errors.RegistrationError, 503),
)
BODY_ERRORS: tuple[ErrorSpec, ...] = (errors.BodyTooLarge,)
SERVER_KEY_ERRORS: tuple[ErrorSpec, ...] = (errors.ServerKeyRequired,)
# What a public key can make the server do is limited per client address (the README's Security section).
LIMITED_ERRORS: tuple[ErrorSpec, ...] = (errors.RateLimited,)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    description: str = ""
    tag: str = "users"
    request_schema: str | None = None  # name of a schema in openapi.SCHEMAS; None: no body is read
    success_schema: str | None = None  # None: 200 with an empty body
    success_media_type: str = "application/json"
    errors: tuple[ErrorSpec, ...] = field(default_factory=tuple)
    # Non-error answers besides the 200: (HTTP status, schema name, description).
    other_responses: tuple[tuple[int, str, str], ...] = ()
    # Request headers the operation reads (names in openapi.HEADERS); none is required.
    headers: tuple[str, ...] = ()
    # Path parameter → the pattern the router matches it with (the document keeps the plain path):
    # a parameter that would otherwise also match the fixed paths beside it.
    path_patterns: tuple[tuple[str, str], ...] = ()

    @property
    def router_path(self) -> str:
        path = self.path
        for name, pattern in self.path_patterns:
            path = path.replace(f"{{{name}}}", f"{{{name}:{pattern}}}")
        return path


ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        f"{APP_BASE}/users/register",
        views.register,
        "registerUser",
        "Register a user",
        "Creates a user from its properties (or converts the guest named by `objectId`). The checks run "
        "in this order and the first that fails answers: 2002, 9008 (rate limit), 3009, 9003 (body over "
        "the size limit), 3038, 3043, 3039, 3021, 3011, 3013, 3010, 9007 (dynamic columns cap), 3012, "
        "3041, 8000, 3040, 3014, 9009 (hashing queue full), 9001 (mailbox limits, when the identity is "
        "not the email address), 3033. With `dynamicSchema` on, an unknown property becomes a new column "
        "of its value's type, and only if the user is created. The answer never carries the password "
        "or its hash.",
        request_schema="RegistrationBody",
        success_schema="User",
        errors=(
            *API_ERRORS,
            *BODY_ERRORS,
            *LIMITED_ERRORS,
            errors.HashingBusy,
            errors.TooManyDynamicColumns,
            errors.ResendTooSoon,
            errors.RegistrationDisabled,
            errors.MissingBody,
            (errors.MissingBody, 415),
            errors.DuplicateProperty,
            errors.IdPropertyNotAllowed,
            errors.RegistrationError,
            errors.MissingPassword,
            errors.MissingIdentity,
            errors.UnknownProperty,
            errors.MissingRequiredProperty,
            errors.EmptyRequiredProperty,
            errors.ValueTooLong,
            errors.InvalidEmail,
            errors.ExternalRegistrationFailed,
            errors.IdentityTaken,
        ),
    ),
    Route(
        "POST",
        f"{APP_BASE}/users/register/guest",
        views.register_guest,
        "registerGuest",
        "Create a guest user",
        "Creates a user with status GUEST and returns it with a `user-token`. A body, if any, is ignored.",
        success_schema="LoggedInUser",
        errors=(*API_ERRORS, *LIMITED_ERRORS),
    ),
    Route(
        "POST",
        f"{APP_BASE}/users/login",
        views.login,
        "login",
        "Log in",
        "Checks the password and returns the user with a new `user-token`. An unknown login and a "
        "wrong password get the same 3003, in similar time.",
        request_schema="LoginBody",
        success_schema="LoggedInUser",
        errors=(
            *API_ERRORS,
            *BODY_ERRORS,
            *LIMITED_ERRORS,
            errors.HashingBusy,
            errors.MalformedRequest,
            (errors.MalformedRequest, 415),
            errors.EmptyLoginOrPassword,
            errors.InvalidLogin,
            errors.LoginDisabled,
            errors.EmailNotConfirmed,
        ),
    ),
    Route(
        "POST",
        f"{APP_BASE}/users/resendconfirmation/{{identity}}",
        views.resend_confirmation,
        "resendConfirmation",
        "Send a new confirmation email",
        "Issues a new confirmation link to a user waiting for confirmation and emails it; earlier "
        "unexpired links keep working. Answers 200 with an empty body. No body is needed.",
        errors=(
            *API_ERRORS,
            *LIMITED_ERRORS,
            errors.ConfirmationNotEnabled,
            errors.IdentityNotFound,
            errors.AlreadyConfirmed,
            errors.ResendTooSoon,
        ),
    ),
    Route(
        "PUT",
        f"{APP_BASE}/users/{{objectId}}/status",
        views.set_status,
        "setUserStatus",
        "Enable or disable a user (server key)",
        "Allowed: ENABLED↔DISABLED and EMAIL_CONFIRMATION_PENDING→ENABLED|DISABLED; setting the current "
        "status again is accepted. Disabling ends the user's sessions. Answers 200 with an empty body.",
        request_schema="StatusBody",
        errors=(
            *API_ERRORS,
            *BODY_ERRORS,
            *SERVER_KEY_ERRORS,
            errors.MalformedRequest,
            (errors.MalformedRequest, 415),
            errors.UserNotFound,
            errors.StatusChangeNotAllowed,
        ),
    ),
    Route(
        "POST",
        f"{APP_BASE}/users/createEmailConfirmationURL/{{identity}}",
        views.create_confirmation_url,
        "createEmailConfirmationURL",
        "Create a confirmation link without emailing it (server key)",
        "Issues a new confirmation link for a user waiting for confirmation and returns it; nothing "
        "is emailed. No body is needed.",
        success_schema="ConfirmationURL",
        errors=(
            *API_ERRORS,
            *SERVER_KEY_ERRORS,
            errors.ConfirmationNotEnabled,
            errors.IdentityNotFound,
            errors.AlreadyConfirmed,
        ),
    ),
    Route(
        "GET",
        f"{APP_BASE}/info",
        views.app_info,
        "appInfo",
        "The app's public description",
        "What the official SDKs read at `initApp`: the app's id and name, its identity property, "
        "whether it takes registrations and confirms emails, and `loggers` (none). Never a key.",
        tag="apps",
        success_schema="AppInfo",
        errors=API_ERRORS,
    ),
    Route(
        "GET",
        f"{APP_BASE}/users/isvalidusertoken/{{token}}",
        views.is_valid_user_token,
        "isValidUserToken",
        "Is a user-token a live session?",
        "`true` while the token is a session of the app (a login's or a guest's) that was not ended "
        "(logout, the user disabled, its password changed) and was used within the app's `sessionTtl`; "
        "`false` otherwise. The check counts as a use of the session.",
        success_schema="Boolean",
        errors=API_ERRORS,
    ),
    Route(
        "GET",
        f"{APP_BASE}/users/logout",
        views.logout,
        "logout",
        "Log out",
        "Ends the session of the `user-token` header. Answers 200 with an empty body; 3064 when the "
        "header is missing or its token is no live session of the app.",
        headers=("user-token",),
        errors=(*API_ERRORS, errors.UserTokenNotFound),
    ),
    Route(
        "GET",
        f"{APP_BASE}/users/restorepassword/{{identity}}",
        views.restore_password,
        "restorePassword",
        "Email a password-reset link",
        "Emails the user a link to a page where a new password is set (valid `passwordResetLinkTtl`, "
        "single use; earlier unexpired links keep working until one is used). Answers 200 with an empty "
        "body. 9001 within the cool-down of the user's last reset link or of the last email to its "
        "mailbox, or when the mailbox had its emails of the day.",
        errors=(*API_ERRORS, *LIMITED_ERRORS, errors.UnknownIdentity, errors.ResendTooSoon),
    ),
    Route(
        "PUT",
        f"{APP_BASE}/users/{{objectId}}",
        views.update_user,
        "updateUser",
        "Update a user",
        "Changes the properties the body names (the others keep their values) of the user signed in "
        "with the `user-token` header, or of any user with the server key. Register's checks where "
        "they apply, in its order: 3043, 3039, 3021, 3011 (password emptied), 3013 (identity emptied), "
        "3010, 9007, 3041 (a required column emptied), 8000, 3040, then 9009 and 3033. The properties "
        "the server sets may be sent back as the SDKs do (`objectId`, `ownerId`, `created`, `updated`, "
        "`lastLogin`, `socialAccount`, `___class`, `user-token`); they are ignored, but `objectId` must "
        "be the user's and `userStatus` its current status (3021). A new password ends every other "
        'session of the user (with the server key: all) and emails the "password changed" notice. '
        "In an app that confirms email addresses a new `email` is kept aside: the answer still shows the old "
        "address, and a link that confirms the new one is emailed to it (9001 within that mailbox's "
        "cool-down or past its daily emails). Answers the user.",
        request_schema="UserChanges",
        success_schema="User",
        headers=("user-token",),
        # An objectId is a GUID: /users/register, /users/logout, … stay paths of their own.
        path_patterns=(("objectId", "[0-9A-Fa-f-]{36}"),),
        errors=(
            *API_ERRORS,
            *BODY_ERRORS,
            errors.UserTokenNotFound,
            errors.AnotherUser,
            errors.UserNotFound,
            errors.MissingBody,
            (errors.MissingBody, 415),
            errors.DuplicateProperty,
            errors.IdPropertyNotAllowed,
            errors.RegistrationError,
            errors.MissingPassword,
            errors.MissingIdentity,
            errors.UnknownProperty,
            errors.TooManyDynamicColumns,
            errors.EmptyRequiredProperty,
            errors.ValueTooLong,
            errors.InvalidEmail,
            errors.HashingBusy,
            errors.ResendTooSoon,
            errors.IdentityTaken,
        ),
    ),
    Route(
        "GET",
        f"{APP_BASE}/data/Users/{{objectId}}",
        views.read_user,
        "readUser",
        "Read a user",
        "The user as register answers it (never the password or its hash), for its own `user-token` or "
        "the server key: what the SDK's `getCurrentUser(true)` asks (`Data.of('Users').findById`). "
        "3064 without a live session, 3029 for another user's, 9004 when the server key names no user. "
        "No other Data API route is served.",
        tag="data",
        success_schema="User",
        headers=("user-token",),
        errors=(*API_ERRORS, errors.UserTokenNotFound, errors.AnotherUser, errors.UserNotFound),
    ),
    Route(
        "POST",
        f"{APP_BASE}/users/verifypassowrd",
        views.verify_password,
        "verifyPassword",
        "Check the signed-in user's password",
        '`{"valid": true}` when the body\'s `password` is the password of the user signed in with the '
        '`user-token` header, else `{"valid": false}` (the path is spelled as the official SDK spells '
        "it). Counted by the app's `clientRateLimit`; always verified with argon2id in the hashing pool, "
        "so a wrong password takes as long as a right one.",
        request_schema="PasswordBody",
        success_schema="PasswordCheck",
        headers=("user-token",),
        errors=(
            *API_ERRORS,
            *BODY_ERRORS,
            *LIMITED_ERRORS,
            errors.MalformedRequest,
            (errors.MalformedRequest, 415),
            errors.EmptyLoginOrPassword,
            errors.UserTokenNotFound,
            errors.HashingBusy,
        ),
    ),
    Route(
        "GET",
        f"{APP_BASE}/users/userclassprops",
        views.user_class_props,
        "describeUserClass",
        "Describe the app's Users schema",
        "One entry per column of the app's Users schema, as the SDK's `describeUserClass` reads it: "
        "`name`, `type`, `required`, `identity`, `defaultValue` (none: null) and `dataSize` (the "
        "maximum length, null when there is none).",
        success_schema="UserClassProps",
        errors=API_ERRORS,
    ),
    Route(
        "GET",
        "/health",
        views.health,
        "health",
        "Liveness",
        "200 while the process serves requests.",
        tag="operations",
        success_schema="Health",
    ),
    Route(
        "GET",
        "/ready",
        views.ready,
        "ready",
        "Readiness",
        "200 when PostgreSQL answers through the service's pool and its outbox relay runs with its "
        "RabbitMQ channel open, 503 (same body shape) when either is not (e.g. while the relay "
        "restarts after a failure). Opens no connection of its own.",
        tag="operations",
        success_schema="Ready",
        other_responses=((503, "Ready", "PostgreSQL or RabbitMQ is unreachable"),),
    ),
    Route(
        "GET",
        "/metrics",
        views.prometheus_metrics,
        "metrics",
        "Prometheus metrics",
        "Requests by route and code, latency histogram, outbox backlog.",
        tag="operations",
        success_schema="Metrics",
        success_media_type="text/plain",
    ),
    Route(
        "GET",
        "/openapi.json",
        views.openapi_document,
        "openapi",
        "This document",
        tag="operations",
        success_schema="OpenAPIDocument",
    ),
    Route(
        "GET",
        "/docs",
        api_docs.docs_page,
        "docs",
        "This document as a page",
        "Rendered by Redoc, whose script is served from the service (`/redoc.standalone.js`).",
        tag="operations",
        success_schema="Page",
        success_media_type="text/html",
    ),
    Route(
        "GET",
        "/redoc.standalone.js",
        api_docs.redoc_script,
        "redocScript",
        "The script of `/docs`",
        "Redoc's standalone bundle (MIT licence).",
        tag="operations",
        success_schema="Script",
        success_media_type="text/javascript",
    ),
)


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.router_path, route.handler, name=route.operation_id)
