"""The rules of the registration API as plain functions: no I/O, no server, no database.

`check_registration` applies SPEC §3.1's checks in their order, from "is registration open" to
"is the email address valid", and returns the cleaned candidate user or raises the coded error of
the first check that fails. The checks that need the outside world (the webhook, the unique
identity) come after, in the service layer. Status transitions, API-key checks and the reading of
a webhook's answer live here too, so each can be tested on its own.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from email_validator import EmailNotValidError, validate_email

from userreg.registration import errors
from userreg.shared.apps import DEFAULT_STRING_LENGTH
from userreg.shared.db.models import ColumnType, UserStatus
from userreg.shared.locales import DEFAULT_LOCALE
from userreg.shared.mailboxes import mailbox_key
from userreg.shared.ratelimits import RateLimit, parse_rate_limit

logger = logging.getLogger(__name__)

PASSWORD = "password"
EMAIL = "email"
LOCALE = "blUserLocale"
OBJECT_ID = "objectId"
CLASS = "___class"
USERS_CLASS = "Users"
PASSWORD_MAX_LENGTH = 1024
# Properties the server owns; a client sending one gets 3021 (compared case-insensitively).
SYSTEM_PROPERTIES = frozenset(name.lower() for name in (
    "userStatus", "created", "updated", "ownerId", "lastLogin", "socialAccount",
))
# A new (dynamic) column's name: what a database column or a template variable can be called.
COLUMN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,199}$")
GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
INT_RANGE = (-(2**63), 2**63 - 1)
SHOWN_NAME_LENGTH = 80
MAX_PROPERTIES = 200
DEFAULT_RATE_LIMIT = "60/60s"


# --- the app's rules, as the checks see them ---------------------------------------------------

@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    max_length: int | None = None
    is_identity: bool = False
    built_in: bool = False


@dataclass(frozen=True)
class AppRules:
    """The settings and Users schema of one app, as the registration checks need them."""

    registration_enabled: bool
    email_confirmation_required: bool
    dynamic_schema: bool
    identity_property: str
    columns: Mapping[str, Column]  # by lower-cased name
    max_dynamic_columns: int = 100
    client_rate_limit: RateLimit | None = None  # None: not limited

    @classmethod
    def of(cls, app: Any, columns: Iterable[Column]) -> AppRules:
        """From an `App` (or anything with its setting attributes) and its schema's columns."""
        return cls(
            registration_enabled=app.registration_enabled,
            email_confirmation_required=app.email_confirmation_required,
            dynamic_schema=app.dynamic_schema,
            identity_property=app.identity_property,
            columns={column.name.lower(): column for column in columns},
            max_dynamic_columns=app.max_dynamic_columns,
            client_rate_limit=app_rate_limit(app.client_rate_limit),
        )

    @property
    def dynamic_column_count(self) -> int:
        """Columns that are not built in: added by registrations (dynamicSchema) or by an operator."""
        return sum(1 for column in self.columns.values() if not column.built_in)

    def identity_key(self, identity: str) -> str:
        return identity_key(identity, self.identity_property)

    @property
    def identity_column(self) -> Column:
        """The identity column; an identity property missing from the schema is taken as STRING."""
        return self.columns.get(self.identity_property.lower()) or Column(
            self.identity_property, ColumnType.STRING, max_length=DEFAULT_STRING_LENGTH, is_identity=True)


@dataclass(frozen=True)
class Candidate:
    """A registration that passed every check that needs no I/O."""

    properties: dict[str, Any]  # canonical column name → cleaned value; never the password
    password: str
    identity: str
    identity_key: str
    new_columns: tuple[Column, ...]  # dynamic columns to add (dynamicSchema on)
    guest_object_id: str | None  # converting this guest, when given


# --- request checks ----------------------------------------------------------------------------

def authorize(keys: tuple[str, str] | None, api_key: str, *, server_only: bool = False) -> bool:
    """2002 unless `api_key` is the app's REST or server key; 3054 when only the server key will do.
    `keys` is (restApiKey, serverApiKey), None for an unknown app. True for the server key."""
    if keys is None:
        raise errors.InvalidApplication()
    rest_key, server_key = keys
    given = api_key.encode("utf-8", "surrogatepass")
    is_server = hmac.compare_digest(given, server_key.encode())
    if not is_server and not hmac.compare_digest(given, rest_key.encode()):
        raise errors.InvalidApplication()
    if server_only and not is_server:
        raise errors.ServerKeyRequired()
    return is_server


def app_rate_limit(setting: str) -> RateLimit | None:
    """The app's `clientRateLimit`; a stored value that does not parse (written around the admin
    command) limits at the default rather than not at all."""
    try:
        return parse_rate_limit(setting)
    except ValueError:
        logger.warning("clientRateLimit %r does not parse; limiting at %s", setting, DEFAULT_RATE_LIMIT)
        return parse_rate_limit(DEFAULT_RATE_LIMIT)


def well_formed_app_id(app_id: str) -> bool:
    """An appId worth looking up at all (anything else is 2002 without a query)."""
    return GUID.fullmatch(app_id) is not None


def is_json_content_type(content_type: str | None) -> bool:
    """`application/json` or any `application/*+json`, parameters (charset) ignored."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class Pairs(list):
    """A JSON object as the list of its (name, value) pairs, so duplicates are still visible."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(content_type: str | None, body: bytes, error: type[errors.ApiError]) -> Pairs:
    """The body as the pairs of one JSON object; `error` (with 415 for a non-JSON Content-Type,
    else 400) when it is missing, not JSON, or not an object."""
    if not is_json_content_type(content_type):
        raise error("Content-Type must be application/json", status=415)
    if not body.strip():
        raise error("The request has no body")
    try:
        value = json.loads(body, object_pairs_hook=Pairs, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise error("The request body is not valid JSON") from None
    if not isinstance(value, Pairs):
        raise error("The request body must be a JSON object")
    return value


def check_registration_open(rules: AppRules) -> None:
    if not rules.registration_enabled:
        raise errors.RegistrationDisabled()


def check_registration(rules: AppRules, content_type: str | None, body: bytes, *,
                       default_locale: str = DEFAULT_LOCALE) -> Candidate:
    """Every check of a self-registration request that needs no I/O, in SPEC §3.1's order
    (after 2002, which needs the app): 3009, 3038, then `validate_registration`'s."""
    check_registration_open(rules)
    pairs = parse_json_object(content_type, body, errors.MissingBody)
    return validate_registration(rules, pairs, default_locale=default_locale)


def validate_registration(rules: AppRules, properties: Iterable[tuple[str, Any]] | Mapping[str, Any], *,
                          default_locale: str = DEFAULT_LOCALE) -> Candidate:
    """The checks from 3043 to 3040, in order, on the user's properties (pairs or a mapping).

    Returns the candidate with every property under its column's canonical name; raises the
    error of the first check that fails.
    """
    pairs = list(properties.items() if isinstance(properties, Mapping) else properties)
    for name, _ in pairs:
        if not isinstance(name, str):
            raise errors.RegistrationError("Property names must be strings")

    # 3043: the same property twice, names compared case-insensitively.
    seen: set[str] = set()
    for name, _ in pairs:
        if name.lower() in seen:
            raise errors.DuplicateProperty(f"Duplicate property in the registration request: {shown(name)}")
        seen.add(name.lower())

    # 3039
    if "id" in seen:
        raise errors.IdPropertyNotAllowed()

    # 3021: system properties, objects and arrays, values of the wrong type for their column.
    if len(pairs) > MAX_PROPERTIES:
        raise errors.RegistrationError(f"A user has at most {MAX_PROPERTIES} properties")
    guest_object_id: str | None = None
    values: dict[str, tuple[str, Any]] = {}  # lower name → (name as sent, cleaned value)
    for name, value in pairs:
        key = name.lower()
        if key in SYSTEM_PROPERTIES:
            raise errors.RegistrationError(f"Property {shown(name)} is set by the server and cannot be sent")
        if key == CLASS.lower():
            if value != USERS_CLASS:
                raise errors.RegistrationError(f'Property {shown(name)} must be "{USERS_CLASS}" when given')
            continue
        if key == OBJECT_ID.lower():
            if value is not None and not (isinstance(value, str) and GUID.fullmatch(value)):
                raise errors.RegistrationError(
                    f"Property {shown(name)} must be the objectId of a guest user of this app")
            guest_object_id = None if value is None else value.upper()
            continue
        if not storable_text(name):
            raise errors.RegistrationError(
                f"Property name {shown(name)} contains characters that cannot be stored")
        if isinstance(value, (list, dict)):  # Pairs is a list
            raise errors.RegistrationError(f"Property {shown(name)} must not be an object or an array")
        column = rules.columns.get(key)
        if column is None and key == PASSWORD:
            column = Column(PASSWORD, ColumnType.STRING, max_length=PASSWORD_MAX_LENGTH)
        if column is None and rules.dynamic_schema and not COLUMN_NAME.fullmatch(name):
            raise errors.RegistrationError(
                f"Property name {shown(name)} is not a valid column name"
                " (a letter, then letters, digits or _)")
        values[key] = (name, clean_value(name, value, column.type if column else _type_of(value)))

    # 3011
    password = values.get(PASSWORD, (PASSWORD, None))[1]
    if password is None or password == "":
        raise errors.MissingPassword()

    # 3013
    identity_column = rules.identity_column
    identity = values.get(identity_column.name.lower(), (None, None))[1]
    if _empty(identity):
        raise errors.MissingIdentity(f'Missing value for the identity property "{identity_column.name}"')

    # 3010
    unknown = [name for key, (name, _) in values.items() if key not in rules.columns and key != PASSWORD]
    if unknown and not rules.dynamic_schema:
        raise errors.UnknownProperty(
            f"Unknown property {shown(unknown[0])} and dynamic properties are disabled")

    # 9007
    if unknown and rules.dynamic_column_count + len(unknown) > rules.max_dynamic_columns:
        raise errors.TooManyDynamicColumns(
            f"The app's Users schema may have {rules.max_dynamic_columns} columns besides the built-in"
            f" ones; this registration would add {len(unknown)} to its {rules.dynamic_column_count}")

    # 3012, then 3041 (password and identity have their own codes above)
    own_codes = {PASSWORD, identity_column.name.lower()}
    required = [column for key, column in rules.columns.items() if column.required and key not in own_codes]
    for column in required:
        if column.name.lower() not in values:
            raise errors.MissingRequiredProperty(f'Required property "{column.name}" is missing')
    for column in required:
        if _empty(values[column.name.lower()][1]):
            raise errors.EmptyRequiredProperty(
                f'A value for the required property "{column.name}" is missing')

    # 8000
    new_columns: list[Column] = []
    for key, (name, value) in values.items():
        column = rules.columns.get(key)
        if column is None and key != PASSWORD:
            column = Column(name, _type_of(value), max_length=_default_length(_type_of(value)))
            new_columns.append(column)
        if key == PASSWORD:
            limit = (column.max_length if column else None) or PASSWORD_MAX_LENGTH
        else:
            limit = column.max_length
        if key == identity_column.name.lower() and limit is None:
            limit = DEFAULT_STRING_LENGTH  # the identity is indexed: keep it to an indexable size
        if isinstance(value, str) and limit is not None and len(value) > limit:
            raise errors.ValueTooLong(f"The value of {shown(name)} is longer than {limit} characters")

    # 3040
    email = values.get(EMAIL, (EMAIL, None))[1]
    if email is not None or rules.email_confirmation_required:
        if not isinstance(email, str) or not email:
            raise errors.InvalidEmail("An email address is required: the app confirms email addresses")
        check_email_address(email)

    properties: dict[str, Any] = {}
    for key, (name, value) in values.items():
        if key != PASSWORD:
            column = rules.columns.get(key)
            properties[column.name if column else name] = value
    locale_column = rules.columns.get(LOCALE.lower())
    locale_name = locale_column.name if locale_column else LOCALE
    if properties.get(locale_name) is None:
        properties[locale_name] = default_locale
    return Candidate(
        properties=properties,
        password=password,
        identity=str(identity),
        identity_key=rules.identity_key(str(identity)),
        new_columns=tuple(sorted(new_columns, key=lambda column: column.name.lower())),
        guest_object_id=guest_object_id,
    )


def check_email_address(value: str) -> None:
    """3040 unless `value` is a syntactically valid address (no DNS lookups)."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise errors.InvalidEmail(f"Email address is in the wrong format: {error}") from None


def identity_key(identity: str, identity_property: str) -> str:
    """How identities are compared and stored for uniqueness: case-insensitively, and an email
    identity as its mailbox (IDNA domain, case-folded: `v@Bücher.de` is `v@xn--bcher-kva.de`)."""
    if identity_property.lower() == EMAIL:
        return mailbox_key(identity)
    return identity.lower()


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def shown(name: str) -> str:
    """A property name for a message: quoted, bounded in length."""
    if len(name) > SHOWN_NAME_LENGTH:
        name = name[:SHOWN_NAME_LENGTH] + "…"
    return json.dumps(name)


def storable_text(text: str) -> bool:
    """PostgreSQL text/jsonb holds neither NUL nor lone surrogates."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _type_of(value: Any) -> ColumnType:
    """The type of the column a dynamic property becomes."""
    if isinstance(value, bool):
        return ColumnType.BOOLEAN
    if isinstance(value, int):
        return ColumnType.INT
    if isinstance(value, float):
        return ColumnType.DOUBLE
    return ColumnType.STRING


def _default_length(column_type: ColumnType) -> int | None:
    return DEFAULT_STRING_LENGTH if column_type is ColumnType.STRING else None


def clean_value(name: str, value: Any, column_type: ColumnType) -> Any:
    """The value as stored for a column of `column_type`; 3021 naming the property if it does not fit."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        raise errors.RegistrationError(f"Property {shown(name)} is not a finite number")
    wrong = errors.RegistrationError(f"Property {shown(name)} must be of type {column_type.value}")
    if column_type in (ColumnType.STRING, ColumnType.TEXT):
        if not isinstance(value, str):
            raise wrong
        if not storable_text(value):
            raise errors.RegistrationError(
                f"Property {shown(name)} contains characters that cannot be stored")
        return value
    if isinstance(value, bool):
        if column_type is ColumnType.BOOLEAN:
            return value
        raise wrong
    if column_type is ColumnType.BOOLEAN:
        raise wrong
    if column_type is ColumnType.INT:
        if not isinstance(value, int):
            raise wrong
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise errors.RegistrationError(f"Property {shown(name)} is out of the range of an INT column")
        return value
    if column_type is ColumnType.DOUBLE:
        if not isinstance(value, (int, float)):
            raise wrong
        return value
    # DATETIME: epoch milliseconds (as Backendless returns dates) or an ISO-8601 string; stored as ms.
    if isinstance(value, (int, float)):
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise errors.RegistrationError(f"Property {shown(name)} is out of the range of a date")
        return int(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise errors.RegistrationError(
                f"Property {shown(name)} must be a date: epoch milliseconds or ISO-8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        try:
            return epoch_ms(moment)
        except (OverflowError, ValueError):
            raise errors.RegistrationError(f"Property {shown(name)} is out of the range of a date") from None
    raise wrong


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- login -------------------------------------------------------------------------------------

def login_credentials(pairs: Pairs) -> tuple[str, str]:
    """(login, password) from a login body; 3006 when either is absent, empty or not a string."""
    body = dict(pairs)
    login, password = body.get("login"), body.get("password")
    if not isinstance(login, str) or not login or not isinstance(password, str) or not password:
        raise errors.EmptyLoginOrPassword()
    return login, password


def check_can_log_in(status: UserStatus) -> None:
    """After the password matched: 3090 for a disabled user, 9002 for an unconfirmed one."""
    if status is UserStatus.DISABLED:
        raise errors.LoginDisabled()
    if status is UserStatus.EMAIL_CONFIRMATION_PENDING:
        raise errors.EmailNotConfirmed()


# --- user status -------------------------------------------------------------------------------

SETTABLE_STATUSES = (UserStatus.ENABLED, UserStatus.DISABLED)
ALLOWED_TRANSITIONS: dict[UserStatus, frozenset[UserStatus]] = {
    UserStatus.ENABLED: frozenset({UserStatus.DISABLED}),
    UserStatus.DISABLED: frozenset({UserStatus.ENABLED}),
    UserStatus.EMAIL_CONFIRMATION_PENDING: frozenset({UserStatus.ENABLED, UserStatus.DISABLED}),
    UserStatus.GUEST: frozenset(),
}


def status_from_body(pairs: Pairs) -> UserStatus:
    """The target of a status change: 9005 unless the body is `{"userStatus": "ENABLED"|"DISABLED"}`."""
    value = dict(pairs).get("userStatus")
    for status in SETTABLE_STATUSES:
        if value == status.value:
            return status
    raise errors.MalformedRequest('The body must be {"userStatus": "ENABLED"} or {"userStatus": "DISABLED"}')


def parse_status(value: str) -> UserStatus:
    """A target status by name (for the admin command); 9005 for anything but ENABLED / DISABLED."""
    return status_from_body(Pairs([("userStatus", value)]))


def check_status_change(current: UserStatus, target: UserStatus) -> bool:
    """True when the status must change, False when it already is the target; 9006 when the
    transition is not one of ENABLED↔DISABLED, EMAIL_CONFIRMATION_PENDING→ENABLED|DISABLED."""
    if current is target:
        return False
    if target not in ALLOWED_TRANSITIONS[current]:
        raise errors.StatusChangeNotAllowed(f"A user cannot go from {current.value} to {target.value}")
    return True


# --- the before-register webhook's answer ------------------------------------------------------

WEBHOOK_MESSAGE_LENGTH = 200


def webhook_refusal(status: int, content_type: str | None, body: bytes) -> str | None:
    """Why the webhook's answer refuses the user, or None when it allows it.

    Any non-2xx refuses. A 2xx allows unless its body is a JSON object saying no: `"allow": false`,
    `"allowed": false`, `"reject": true`, `"rejected": true` or `"status": "reject"|"rejected"|"deny"|
    "denied"`; its `"message"` (a string) is passed on to the client, shortened and on one line.
    """
    if not 200 <= status < 300:
        return f"the webhook answered HTTP {status}"
    try:
        answer = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(answer, dict):
        return None
    refused = (answer.get("allow") is False or answer.get("allowed") is False
               or answer.get("reject") is True or answer.get("rejected") is True
               or str(answer.get("status", "")).lower() in ("reject", "rejected", "deny", "denied"))
    if not refused:
        return None
    message = answer.get("message")
    if isinstance(message, str) and message.strip():
        text = " ".join(message.split())[:WEBHOOK_MESSAGE_LENGTH]
        return f"the webhook rejected the user: {text}"
    return "the webhook rejected the user"
