"""An app's settings and Users schema as the registration checks see them, how identities are
compared, and the dynamic columns a registration adds (dynamicSchema on)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from userreg.registration import errors
from userreg.registration.rules.cors import ANY, CorsPolicy, policy_of
from userreg.registration.rules.properties import EMAIL, shown
from userreg.registration.rules.values import clean_value
from userreg.shared.apps import DEFAULT_STRING_LENGTH
from userreg.shared.db.models import ColumnType
from userreg.shared.mailboxes import mailbox_key
from userreg.shared.ratelimits import RateLimit, parse_rate_limit

logger = logging.getLogger(__name__)

DEFAULT_RATE_LIMIT = "60/60s"


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
    cors: CorsPolicy = ANY  # which web pages may read the answers (allowedOrigins)

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
            cors=policy_of(getattr(app, "allowed_origins", None)),
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
            self.identity_property, ColumnType.STRING, max_length=DEFAULT_STRING_LENGTH, is_identity=True
        )


def app_rate_limit(setting: str) -> RateLimit | None:
    """The app's `clientRateLimit`; a stored value that does not parse (written around the admin
    command) limits at the default rather than not at all."""
    try:
        return parse_rate_limit(setting)
    except ValueError:
        logger.warning("clientRateLimit %r does not parse; limiting at %s", setting, DEFAULT_RATE_LIMIT)
        return parse_rate_limit(DEFAULT_RATE_LIMIT)


def identity_key(identity: str, identity_property: str) -> str:
    """How identities are compared and stored for uniqueness: case-insensitively, and an email
    identity as its mailbox (IDNA domain, case-folded: `v@Bücher.de` is `v@xn--bcher-kva.de`)."""
    if identity_property.lower() == EMAIL:
        return mailbox_key(identity)
    return identity.lower()


# --- dynamic columns, checked again against the schema as it is when they are added ------------


def check_dynamic_column_cap(
    existing: Mapping[str, bool], new_columns: Iterable[Column], max_dynamic_columns: int
) -> None:
    """9007 when adding the new columns that do not exist yet would take the schema past
    `maxDynamicColumns`. `existing`: the schema's lower-cased column names → built in."""
    added = [column for column in new_columns if column.name.lower() not in existing]
    dynamic = sum(1 for built_in in existing.values() if not built_in)
    if added and dynamic + len(added) > max_dynamic_columns:
        raise errors.TooManyDynamicColumns(
            f"The app's Users schema may have {max_dynamic_columns} columns besides the "
            f"built-in ones; this registration would add {len(added)} to its {dynamic}"
        )


def fit_to_columns(
    properties: Mapping[str, Any], new_columns: Iterable[Column], columns: Iterable[Column]
) -> dict[str, Any]:
    """The properties with each new column's value under the name and in the type the column
    finally has (another request may have created it meanwhile, with another name case or type):
    3021 when the value does not fit that type, 8000 when it is longer than its limit."""
    fitted = dict(properties)
    sent_names = {column.name.lower(): column.name for column in new_columns}
    for column in columns:
        sent = sent_names[column.name.lower()]
        value = clean_value(sent, fitted.pop(sent), column.type)
        if isinstance(value, str) and column.max_length is not None and len(value) > column.max_length:
            raise errors.ValueTooLong(f"The value of {shown(sent)} is longer than {column.max_length} characters")
        fitted[column.name] = value
    return fitted
