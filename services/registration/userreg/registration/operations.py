"""What the registration service offers other packages (the admin command, and the console to
come): its service layer opened on resources of its own (`Registrar`, and its `accounts`: sessions
and password recovery), the wire shape of a user, and the rules an operator's input goes through.
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

__all__ = [
    "CLASS", "COLUMN_NAME", "OBJECT_ID", "PASSWORD", "SYSTEM_PROPERTIES", "Accounts", "ApiError", "Registrar",
    "SessionInfo", "Tenant", "identity_key", "open_registrar", "parse_status", "user_json",
]
