"""Who may call and who may log in: API keys, appIds worth a query, login bodies, and the statuses
that keep a user with the right password out."""

from __future__ import annotations

import hmac

from userreg.registration import errors
from userreg.registration.rules.body import Pairs
from userreg.registration.rules.properties import GUID
from userreg.shared.db.models import UserStatus


def authorize(keys: tuple[str, str] | None, api_key: str, *, server_only: bool = False) -> bool:
    """2002 unless `api_key` is the app's REST or server key; 3054 when only the server key will do.
    `keys` is (restApiKey, serverApiKey), None for an unknown app. True for the server key."""
    if keys is None:
        raise errors.InvalidApplication()
    rest_key, server_key = keys
    is_server = is_server_key(server_key, api_key)
    if not is_server and not hmac.compare_digest(api_key.encode("utf-8", "surrogatepass"), rest_key.encode()):
        raise errors.InvalidApplication()
    if server_only and not is_server:
        raise errors.ServerKeyRequired()
    return is_server


def is_server_key(server_key: str, api_key: str) -> bool:
    """Whether `api_key` (of a request `authorize` let through) is the app's server key."""
    return hmac.compare_digest(api_key.encode("utf-8", "surrogatepass"), server_key.encode())


def well_formed_app_id(app_id: str) -> bool:
    """An appId worth looking up at all (anything else is 2002 without a query)."""
    return GUID.fullmatch(app_id) is not None


def login_credentials(pairs: Pairs) -> tuple[str, str]:
    """(login, password) from a login body; 3006 when either is absent, empty or not a string."""
    body = dict(pairs)
    login, password = body.get("login"), body.get("password")
    if not isinstance(login, str) or not login or not isinstance(password, str) or not password:
        raise errors.EmptyLoginOrPassword()
    return login, password


def password_to_verify(pairs: Pairs) -> str:
    """The password of a `verifypassowrd` body; 3006 when it is absent, empty or not a string."""
    password = dict(pairs).get("password")
    if not isinstance(password, str) or not password:
        raise errors.EmptyLoginOrPassword("The password is absent or an empty string value")
    return password


def check_can_log_in(status: UserStatus) -> None:
    """After the password matched: 3090 for a disabled user, 9002 for an unconfirmed one."""
    if status is UserStatus.DISABLED:
        raise errors.LoginDisabled()
    if status is UserStatus.EMAIL_CONFIRMATION_PENDING:
        raise errors.EmailNotConfirmed()
