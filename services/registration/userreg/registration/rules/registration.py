"""docs/api.md, register's checks of a new user that need no I/O, in their order.

3009 (`check_registration_open`) is asked of a self-registration before its body is read; then the
body must be a JSON object (3038, `body.parse_json_object`); `validate_registration` runs the
checks from 3043 to 3040 and returns the cleaned candidate user, or raises the coded error of the
first check that fails. The checks that need the outside world (the webhook, the hashing queue,
the unique identity) come after, in the service layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email

from userreg.registration import errors
from userreg.registration.rules.properties import (
    CLASS,
    COLUMN_NAME,
    EMAIL,
    GUID,
    LOCALE,
    MAX_PROPERTIES,
    OBJECT_ID,
    PASSWORD,
    PASSWORD_MAX_LENGTH,
    SYSTEM_PROPERTIES,
    USERS_CLASS,
    shown,
)
from userreg.registration.rules.schema import AppRules, Column
from userreg.registration.rules.values import clean_value, default_length, storable_text, type_of
from userreg.shared.apps import DEFAULT_STRING_LENGTH
from userreg.shared.db.models import ColumnType, User, UserStatus
from userreg.shared.locales import DEFAULT_LOCALE
from userreg.shared.mailboxes import mailbox_key


@dataclass(frozen=True)
class Candidate:
    """A registration that passed every check that needs no I/O."""

    properties: dict[str, Any]  # canonical column name → cleaned value; never the password
    password: str
    identity: str
    identity_key: str
    new_columns: tuple[Column, ...]  # dynamic columns to add (dynamicSchema on)
    guest_object_id: str | None  # converting this guest, when given


def check_registration_open(rules: AppRules) -> None:
    """3009 when the app's self-registration is off (an operator may still add users)."""
    if not rules.registration_enabled:
        raise errors.RegistrationDisabled()


def validate_registration(
    rules: AppRules, properties: Iterable[tuple[str, Any]] | Mapping[str, Any], *, default_locale: str = DEFAULT_LOCALE
) -> Candidate:
    """The checks from 3043 to 3040, in order, on the user's properties (pairs or a mapping).

    Returns the candidate with every property under its column's canonical name; raises the
    error of the first check that fails.
    """
    sent = read_values(rules, properties)
    values = sent.values
    guest_object_id: str | None = None
    object_id = sent.system.get(OBJECT_ID.lower())
    if object_id is not None:
        if not (isinstance(object_id, str) and GUID.fullmatch(object_id)):
            raise errors.RegistrationError('Property "objectId" must be the objectId of a guest user of this app')
        guest_object_id = object_id.upper()

    # 3011
    password = values.get(PASSWORD, (PASSWORD, None))[1]
    if password is None or password == "":
        raise errors.MissingPassword()

    # 3013
    identity_column = rules.identity_column
    identity = values.get(identity_column.name.lower(), (None, None))[1]
    if is_empty(identity):
        raise errors.MissingIdentity(f'Missing value for the identity property "{identity_column.name}"')

    check_unknown_properties(rules, values)  # 3010, 9007

    # 3012, then 3041 (password and identity have their own codes above)
    own_codes = {PASSWORD, identity_column.name.lower()}
    required = [column for key, column in rules.columns.items() if column.required and key not in own_codes]
    for column in required:
        if column.name.lower() not in values:
            raise errors.MissingRequiredProperty(f'Required property "{column.name}" is missing')
    for column in required:
        if is_empty(values[column.name.lower()][1]):
            raise errors.EmptyRequiredProperty(f'A value for the required property "{column.name}" is missing')

    new_columns = check_lengths(rules, values)  # 8000
    check_email_value(rules, values, required=rules.email_confirmation_required)  # 3040

    properties = stored_properties(rules, values)
    locale_column = rules.columns.get(LOCALE.lower())
    locale_name = locale_column.name if locale_column else LOCALE
    if properties.get(locale_name) is None:
        properties[locale_name] = default_locale
    return Candidate(
        properties=properties,
        password=password,
        identity=str(identity),
        identity_key=rules.identity_key(str(identity)),
        new_columns=new_columns,
        guest_object_id=guest_object_id,
    )


@dataclass(frozen=True)
class SentValues:
    """A body's properties after 3043, 3039 and 3021: each cleaned for its column's type."""

    values: dict[str, tuple[str, Any]]  # lower name → (name as sent, cleaned value); the password included
    system: dict[str, Any]  # lower name → value, of `objectId` and of the `echoed` properties sent


def read_values(
    rules: AppRules, properties: Iterable[tuple[str, Any]] | Mapping[str, Any], *, echoed: frozenset[str] = frozenset()
) -> SentValues:
    """3043 (a property twice), 3039 (`id`), then 3021: a system property (unless its lower-cased
    name is `echoed`: an update may send back what the server answered; it is kept aside, not
    checked), `___class` other than "Users", an object or array value, a value of the wrong type."""
    pairs = list(properties.items() if isinstance(properties, Mapping) else properties)
    for name, _ in pairs:
        if not isinstance(name, str):
            raise errors.RegistrationError("Property names must be strings")

    # 3043: the same property twice, names compared case-insensitively.
    seen: set[str] = set()
    for name, _ in pairs:
        if name.lower() in seen:
            raise errors.DuplicateProperty(f"Duplicate property in the request: {shown(name)}")
        seen.add(name.lower())

    # 3039
    if "id" in seen:
        raise errors.IdPropertyNotAllowed()

    # 3021: system properties, objects and arrays, values of the wrong type for their column.
    if len(pairs) > MAX_PROPERTIES:
        raise errors.RegistrationError(f"A user has at most {MAX_PROPERTIES} properties")
    system: dict[str, Any] = {}
    values: dict[str, tuple[str, Any]] = {}
    for name, value in pairs:
        key = name.lower()
        if key in echoed or key == OBJECT_ID.lower():
            system[key] = value
            continue
        if key in SYSTEM_PROPERTIES:
            raise errors.RegistrationError(f"Property {shown(name)} is set by the server and cannot be sent")
        if key == CLASS.lower():
            if value != USERS_CLASS:
                raise errors.RegistrationError(f'Property {shown(name)} must be "{USERS_CLASS}" when given')
            continue
        if not storable_text(name):
            raise errors.RegistrationError(f"Property name {shown(name)} contains characters that cannot be stored")
        if isinstance(value, (list, dict)):  # Pairs is a list
            raise errors.RegistrationError(f"Property {shown(name)} must not be an object or an array")
        column = rules.columns.get(key)
        if column is None and key == PASSWORD:
            column = Column(PASSWORD, ColumnType.STRING, max_length=PASSWORD_MAX_LENGTH)
        if column is None and rules.dynamic_schema and not COLUMN_NAME.fullmatch(name):
            raise errors.RegistrationError(
                f"Property name {shown(name)} is not a valid column name (a letter, then letters, digits or _)"
            )
        values[key] = (name, clean_value(name, value, column.type if column else type_of(value)))
    return SentValues(values, system)


def check_unknown_properties(rules: AppRules, values: Mapping[str, tuple[str, Any]]) -> None:
    """3010 for a property that is no column while `dynamicSchema` is off; 9007 when the new
    columns would take the schema past `maxDynamicColumns`."""
    unknown = [name for key, (name, _) in values.items() if key not in rules.columns and key != PASSWORD]
    if unknown and not rules.dynamic_schema:
        raise errors.UnknownProperty(f"Unknown property {shown(unknown[0])} and dynamic properties are disabled")
    if unknown and rules.dynamic_column_count + len(unknown) > rules.max_dynamic_columns:
        raise errors.TooManyDynamicColumns(
            f"The app's Users schema may have {rules.max_dynamic_columns} columns besides the built-in"
            f" ones; this request would add {len(unknown)} to its {rules.dynamic_column_count}"
        )


def check_lengths(rules: AppRules, values: Mapping[str, tuple[str, Any]]) -> tuple[Column, ...]:
    """8000 for a value longer than its column's limit (the password's: 1024, the identity's: an
    indexable size); the new (dynamic) columns the values need, sorted by name."""
    identity_key = rules.identity_column.name.lower()
    new_columns: list[Column] = []
    for key, (name, value) in values.items():
        column = rules.columns.get(key)
        limit: int | None
        if key == PASSWORD:
            limit = (column.max_length if column else None) or PASSWORD_MAX_LENGTH
        else:
            if column is None:
                column = Column(name, type_of(value), max_length=default_length(type_of(value)))
                new_columns.append(column)
            limit = column.max_length
        if key == identity_key and limit is None:
            limit = DEFAULT_STRING_LENGTH  # the identity is indexed: keep it to an indexable size
        if isinstance(value, str) and limit is not None and len(value) > limit:
            raise errors.ValueTooLong(f"The value of {shown(name)} is longer than {limit} characters")
    return tuple(sorted(new_columns, key=lambda column: column.name.lower()))


def check_email_value(rules: AppRules, values: Mapping[str, tuple[str, Any]], *, required: bool) -> None:
    """3040 when `email` is given (or `required`) but is no valid address."""
    email = values.get(EMAIL, (EMAIL, None))[1]
    if email is not None or required:
        if not isinstance(email, str) or not email:
            raise errors.InvalidEmail("An email address is required: the app confirms email addresses")
        check_email_address(email)


def stored_properties(rules: AppRules, values: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    """The values under their columns' canonical names (a new column's: as sent), without the password."""
    properties: dict[str, Any] = {}
    for key, (name, value) in values.items():
        if key != PASSWORD:
            column = rules.columns.get(key)
            properties[column.name if column else name] = value
    return properties


def check_email_address(value: str) -> None:
    """3040 unless `value` is a syntactically valid address (no DNS lookups)."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise errors.InvalidEmail(f"Email address is in the wrong format: {error}") from None


def guest_to_convert(user: User | None, object_id: str) -> User:
    """The user an `objectId` names, if it is a guest of the app; 3021 otherwise (unknown, another
    app's, or registered already)."""
    if user is None or user.status is not UserStatus.GUEST:
        raise errors.RegistrationError(f"objectId {object_id} is not a guest user of this app")
    return user


def shared_mailbox(rules: AppRules, candidate: Candidate) -> str | None:
    """The mailbox the confirmation email goes to, when other users of the app may share it (the
    identity is not the email address) and so its limits must be checked first; else None (an
    email identity is unique: its mailbox belongs to this user alone)."""
    email = candidate.properties.get(EMAIL)
    if not rules.email_confirmation_required or rules.identity_column.name.lower() == EMAIL:
        return None
    return mailbox_key(email) if isinstance(email, str) and email else None


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
