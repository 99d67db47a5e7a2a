"""The checks of a signed-in user's update (`PUT /users/{objectId}`) that need no I/O: register's
rules where they apply (`rules.registration`), and what an update may leave out or send back.

An update names only what changes: a property left out keeps its value, so an absent password,
identity or required column is no error, but an empty one is (3011, 3013, 3041). The official SDKs
send the whole user object back, the properties the server sets included: those are accepted and
ignored as long as they change nothing (`objectId` the user's own, `userStatus` its current one;
the dates, `ownerId`, `socialAccount` and the `user-token` are the server's and never read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from userreg.registration import errors
from userreg.registration.rules.properties import EMAIL, OBJECT_ID, PASSWORD, SYSTEM_PROPERTIES, USER_TOKEN
from userreg.registration.rules.registration import (
    check_email_value,
    check_lengths,
    check_unknown_properties,
    is_empty,
    read_values,
    stored_properties,
)
from userreg.registration.rules.schema import AppRules, Column
from userreg.shared.db.models import User, UserStatus
from userreg.shared.mailboxes import mailbox_key

# What an SDK sends back of an answer it got: the server's properties, and a login's token.
ECHOED = SYSTEM_PROPERTIES | {USER_TOKEN}
USER_STATUS = "userstatus"


@dataclass(frozen=True)
class ProfileChange:
    """An update that passed every check that needs no I/O."""

    properties: dict[str, Any]  # canonical column name → cleaned value, only what changes; never the password
    password: str | None  # the new password, when it changes
    identity_key: str | None  # the new identity's key, when the identity changes now
    new_columns: tuple[Column, ...]  # dynamic columns to add (dynamicSchema on)
    pending_email: str | None  # the new address, kept aside until it is confirmed (the app confirms emails)


def validate_update(
    rules: AppRules, properties: Iterable[tuple[str, Any]] | Mapping[str, Any], user: User
) -> ProfileChange:
    """The checks of an update of `user`, in register's order where they apply: 3043, 3039, 3021,
    3011, 3013, 3010, 9007, 3041, 8000, 3040; raises the error of the first that fails."""
    sent = read_values(rules, properties, echoed=ECHOED)
    _check_echoes(sent.system, user)
    values = sent.values
    identity_column = rules.identity_column
    identity_name = identity_column.name.lower()

    # 3011
    password = values[PASSWORD][1] if PASSWORD in values else None
    if PASSWORD in values and (password is None or password == ""):
        raise errors.MissingPassword("The password cannot be changed to an empty value")

    # 3013
    if identity_name in values and is_empty(values[identity_name][1]):
        raise errors.MissingIdentity(f'The identity property "{identity_column.name}" cannot be emptied')

    if user.status is UserStatus.GUEST and (PASSWORD in values or identity_name in values):
        raise errors.RegistrationError("A guest becomes a registered user through register, with its objectId")

    check_unknown_properties(rules, values)  # 3010, 9007

    # 3041: a required column may be left out (it keeps its value), not emptied.
    for key, column in rules.columns.items():
        if column.required and key not in (PASSWORD, identity_name) and key in values and is_empty(values[key][1]):
            raise errors.EmptyRequiredProperty(f'A value for the required property "{column.name}" is missing')

    new_columns = check_lengths(rules, values)  # 8000
    check_email_value(rules, values, required=rules.email_confirmation_required and EMAIL in values)  # 3040

    changes = stored_properties(rules, values)
    pending_email = None
    if rules.email_confirmation_required and EMAIL in values:
        address = values[EMAIL][1]
        current = user.properties.get(EMAIL)
        if not isinstance(current, str) or mailbox_key(current) != mailbox_key(address):
            pending_email = address
        # Confirmed or not, the address stored changes only when it is confirmed.
        changes = {name: value for name, value in changes.items() if name.lower() != EMAIL}

    identity_key = None
    if identity_name in values and not (pending_email is not None and identity_name == EMAIL):
        new_key = rules.identity_key(str(values[identity_name][1]))
        identity_key = new_key if new_key != user.identity_key else None
    return ProfileChange(
        properties=changes,
        password=password,
        identity_key=identity_key,
        new_columns=new_columns,
        pending_email=pending_email,
    )


def _check_echoes(system: Mapping[str, Any], user: User) -> None:
    """3021 unless what was sent back of the server's properties changes nothing."""
    object_id = system.get(OBJECT_ID.lower())
    if object_id is not None and not (isinstance(object_id, str) and object_id.upper() == user.object_id):
        raise errors.RegistrationError('Property "objectId" must be the objectId of the user being updated')
    status = system.get(USER_STATUS)
    if status is not None and status != user.status.value:
        raise errors.RegistrationError(
            'Property "userStatus" is changed by the server key\'s PUT /users/{objectId}/status, not here'
        )
