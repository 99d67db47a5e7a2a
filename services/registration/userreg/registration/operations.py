"""What the registration service offers other packages (the admin command and the console): its
service layer opened on resources of its own (`Registrar`, and its `accounts`: sessions, deleting
a user, password recovery), the wire shape of a user, and the rules an operator's input goes
through (`PROPERTY_RULES` for schema changes).
Nothing else of the service is imported from outside it (tests/system/test_imports.py)."""

from __future__ import annotations

from userreg.registration.accounts import Accounts
from userreg.registration.app import open_registrar
from userreg.registration.errors import ApiError
from userreg.registration.representation import user_json
from userreg.registration.rules.properties import CLASS, COLUMN_NAME, OBJECT_ID, PASSWORD, SYSTEM_PROPERTIES
from userreg.registration.rules.schema import identity_key
from userreg.registration.rules.sessions import SessionInfo
from userreg.registration.rules.status import parse_status
from userreg.registration.service import Registrar
from userreg.registration.tenants import Tenant
from userreg.shared.schema_changes import PropertyRules

# The rules `shared.schema_changes` applies to an operator's schema changes: what a column may be
# called (not a property every user has besides its columns) and how identities compare.
PROPERTY_RULES = PropertyRules(
    column_name=COLUMN_NAME,
    reserved=SYSTEM_PROPERTIES | {OBJECT_ID.lower(), CLASS.lower(), "id"},
    identity_key=identity_key,
)

__all__ = [
    "CLASS",
    "COLUMN_NAME",
    "OBJECT_ID",
    "PASSWORD",
    "PROPERTY_RULES",
    "SYSTEM_PROPERTIES",
    "Accounts",
    "ApiError",
    "Registrar",
    "SessionInfo",
    "Tenant",
    "identity_key",
    "open_registrar",
    "parse_status",
    "user_json",
]
