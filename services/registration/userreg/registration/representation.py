"""How a user and an app look on the wire (docs/api.md, register's response shape, §3.6's app info). Never a
password, a hash, a key or a setting an operator keeps to itself."""

from __future__ import annotations

from typing import Any

from userreg.registration.rules.properties import CLASS, LOCALE, PASSWORD, USER_TOKEN, USERS_CLASS
from userreg.registration.rules.schema import AppRules
from userreg.registration.rules.values import epoch_ms
from userreg.shared.db.models import App, User
from userreg.shared.locales import DEFAULT_LOCALE

SOCIAL_ACCOUNT = "BACKENDLESS"


def user_json(user: User, *, user_token: str | None = None) -> dict[str, Any]:
    """Every stored property of the user plus the system properties Backendless returns."""
    body = {name: value for name, value in user.properties.items() if name.lower() != PASSWORD}
    created = epoch_ms(user.created_at)
    body.update(
        {
            "objectId": user.object_id,
            # A user owns its own record.
            "ownerId": user.object_id,
            "created": created,
            "updated": epoch_ms(user.updated_at) if user.updated_at else created,
            "userStatus": user.status.value,
            "lastLogin": epoch_ms(user.last_login) if user.last_login else None,
            LOCALE: body.get(LOCALE) or DEFAULT_LOCALE,
            "socialAccount": SOCIAL_ACCOUNT,
            CLASS: USERS_CLASS,
        }
    )
    if user_token is not None:
        body[USER_TOKEN] = user_token
    return body


def app_info_json(app: App) -> dict[str, Any]:
    """What `GET /info` tells any client of the app (the official SDKs read it at `initApp`): its
    public description. `loggers` is the SDK's remote-logging configuration: none here (an SDK
    without the list logs "Could not load logging levels")."""
    return {
        "appId": app.app_id,
        "appName": app.name,
        "identityProperty": app.identity_property,
        "registrationEnabled": app.registration_enabled,
        "emailConfirmationRequired": app.email_confirmation_required,
        "loggers": [],
    }


def user_class_json(rules: AppRules) -> list[dict[str, Any]]:
    """The app's Users schema as Backendless' `describeUserClass` answers it: one entry per column
    (its name, type, whether it is required or the identity, its default value, none here, and
    its maximum length, `dataSize`, null when it has none), in the order of their names."""
    return [
        {
            "name": column.name,
            "type": column.type.value,
            "required": column.required or column.is_identity or column.name.lower() == PASSWORD,
            "identity": column.is_identity,
            "defaultValue": None,
            "dataSize": column.max_length,
        }
        for column in sorted(rules.columns.values(), key=lambda column: column.name.lower())
    ]
