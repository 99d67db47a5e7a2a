"""Every error the registration API answers: one exception type per code, one mapping to the wire.

Codes 2002–8000 are Backendless' own (docs/api.md, register); 9xxx are this project's. An error is a value with a
code, an HTTP status and a message; `envelope()` is the only place it becomes `{"code", "message"}`.
Messages never carry a password, a hash, a token or a stack trace.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class ApiError(Exception):
    """Base of every answered error. Subclasses fix `code`, `status` and a default message."""

    code: ClassVar[int]
    status: ClassVar[int]
    default_message: ClassVar[str]

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        self.message = message or self.default_message
        self.http_status = status or self.status
        super().__init__(self.message)

    def envelope(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    def headers(self) -> dict[str, str]:
        """Extra response headers that belong to this error (e.g. `Retry-After`)."""
        return {}


# --- Backendless codes -------------------------------------------------------------------------


class InvalidApplication(ApiError):
    code, status = 2002, 401
    default_message = "Invalid application info (application id or api key)"


class InvalidLogin(ApiError):
    code, status = 3003, 401
    default_message = "Invalid login or password"


class EmptyLoginOrPassword(ApiError):
    code, status = 3006, 400
    default_message = "Either login or password is an empty string value"


class RegistrationDisabled(ApiError):
    code, status = 3009, 403
    default_message = "User registration is disabled for the application"


class UnknownProperty(ApiError):
    code, status = 3010, 400
    default_message = "User registration has an unknown property and dynamic properties are disabled"


class MissingPassword(ApiError):
    code, status = 3011, 400
    default_message = 'Missing "password" property'


class MissingRequiredProperty(ApiError):
    code, status = 3012, 400
    default_message = "Required property is missing"


class MissingIdentity(ApiError):
    code, status = 3013, 400
    default_message = "Missing value for the identity property"


class ExternalRegistrationFailed(ApiError):
    code, status = 3014, 502
    default_message = "External registration failed with an error"


class UnknownIdentity(ApiError):
    """3020: no user of the app has this identity (`restorepassword`; the confirmation-link
    calls answer an unknown identity with 3104). A guest has no identity."""

    code, status = 3020, 404
    default_message = "Unable to find a user with the specified identity"


class RegistrationError(ApiError):
    """3021: a property the client may not send or of the wrong type (400), or anything else that
    went wrong on our side (500, or 503 while the database is unreachable)."""

    code, status = 3021, 400
    default_message = "General user registration error"


class AnotherUser(ApiError):
    """3029: the `user-token` is a live session, but of another user than the one the path names
    (updating or reading a user takes its own session or the server key)."""

    code, status = 3029, 403
    default_message = "Cannot modify properties of another user"


class IdentityTaken(ApiError):
    code, status = 3033, 409
    default_message = "User with the same identity already exists"


class MissingBody(ApiError):
    """3038: no body, not JSON, or not a JSON object (415 when the Content-Type is not JSON)."""

    code, status = 3038, 400
    default_message = "Missing application-id or collection of properties for the registering user"


class IdPropertyNotAllowed(ApiError):
    code, status = 3039, 400
    default_message = 'Property "id" cannot be used in the registration call'


class InvalidEmail(ApiError):
    code, status = 3040, 400
    default_message = "Email address is in the wrong format"


class EmptyRequiredProperty(ApiError):
    code, status = 3041, 400
    default_message = "A value for a required property is missing"


class DuplicateProperty(ApiError):
    code, status = 3043, 400
    default_message = "Duplicate properties in the registration request"


class ServerKeyRequired(ApiError):
    code, status = 3054, 403
    default_message = "This operation requires the application's server API key"


class UserTokenNotFound(ApiError):
    """3064: the `user-token` is missing, unknown, ended (logged out, the user disabled, its
    password changed) or expired. The message never repeats the token."""

    code, status = 3064, 401
    default_message = "Not existing user token"


class LoginDisabled(ApiError):
    code, status = 3090, 403
    default_message = "User account is disabled"


class AlreadyConfirmed(ApiError):
    code, status = 3102, 400
    default_message = "The user's email address is already confirmed"


class ConfirmationNotEnabled(ApiError):
    code, status = 3103, 400
    default_message = "Email confirmation is not enabled for the application"


class IdentityNotFound(ApiError):
    code, status = 3104, 404
    default_message = "Cannot find a user with the specified identity"


class ValueTooLong(ApiError):
    code, status = 8000, 400
    default_message = "Property value exceeds the length limit"


# --- this project's codes ----------------------------------------------------------------------


class NoSuchRoute(ApiError):
    """9000: no such endpoint (404), or the endpoint does not take this method (405)."""

    code, status = 9000, 404
    default_message = "No such endpoint"

    def __init__(self, message: str | None = None, *, status: int | None = None, allow: str | None = None) -> None:
        super().__init__(message, status=status)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allow} if self.allow is not None else {}


class _RetryLater(ApiError):
    """An error that tells the client when to try again (`Retry-After`, whole seconds, at least 1)."""

    def __init__(self, retry_after_seconds: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, math.ceil(retry_after_seconds))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class ResendTooSoon(_RetryLater):
    """9001: a new confirmation or password-reset link (or another email to the same mailbox) was
    issued within the cool-down, or the mailbox had its daily number of emails."""

    code, status = 9001, 429
    default_message = "A new confirmation link was issued too recently"

    def __init__(self, retry_after_seconds: float, message: str | None = None) -> None:
        seconds = max(1, math.ceil(retry_after_seconds))
        super().__init__(seconds, message or f"{self.default_message}; retry in {seconds} s")


class EmailNotConfirmed(ApiError):
    code, status = 9002, 403
    default_message = "The user's email address is not confirmed yet"


class BodyTooLarge(ApiError):
    code, status = 9003, 413
    default_message = "Request body is too large"


class UserNotFound(ApiError):
    code, status = 9004, 404
    default_message = "No user with that objectId in the application"


class MalformedRequest(ApiError):
    """9005: the body of a non-registration call is not the JSON object it must be (415 when the
    Content-Type is not JSON)."""

    code, status = 9005, 400
    default_message = "The request body is not what this call takes"


class StatusChangeNotAllowed(ApiError):
    code, status = 9006, 409
    default_message = "This user status change is not allowed"


class TooManyDynamicColumns(ApiError):
    """9007: the registration would add dynamic columns past the app's `maxDynamicColumns`."""

    code, status = 9007, 400
    default_message = "The app's Users schema has as many dynamic columns as it may have"


class RateLimited(_RetryLater):
    """9008: this client address made too many requests to the app (its `clientRateLimit`)."""

    code, status = 9008, 429
    default_message = "Too many requests from this address; retry later"


class HashingBusy(_RetryLater):
    """9009: the password-hashing queue is full; nothing was hashed or written."""

    code, status = 9009, 503
    default_message = "The server is busy; retry shortly"


def _coded(cls: type[ApiError]) -> list[type[ApiError]]:
    below = [error for sub in cls.__subclasses__() for error in _coded(sub)]
    return ([cls] if "code" in vars(cls) else []) + below


ERRORS: tuple[type[ApiError], ...] = tuple(sorted(_coded(ApiError), key=lambda cls: cls.code))
