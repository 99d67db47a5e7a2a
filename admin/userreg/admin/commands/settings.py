"""`userreg settings`: the settings every process of this environment runs with, as JSON by their
environment variable, secrets masked (`Settings.describe`: the database's and the broker's
passwords inside their URLs, the SMTP password). Whatever the settings gain later, a value whose
name says it is a secret (a password, a key, a token) is never shown either."""

from __future__ import annotations

import argparse
import re
from typing import Any

from userreg.shared.settings import Settings, mask_url

MASK = "***"
SECRET_NAME = re.compile(r"password|secret|token|(^|_)keys?($|_)")


def shown_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if SECRET_NAME.search(name):
        return MASK
    return mask_url(value) if isinstance(value, str) else value


def effective_settings(settings: Settings) -> dict[str, Any]:
    """Every setting by its environment variable, secrets masked."""
    return {name.upper(): shown_value(name, value) for name, value in settings.describe().items()}


async def show_settings(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return effective_settings(settings)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "settings",
        help="the effective settings, from the environment and the defaults (JSON; secrets masked)",
        description="Every setting as this environment gives it to the services, by its environment "
        "variable (the default where none is set), as JSON. Passwords inside URLs, the SMTP password and "
        "any key or token are shown as ***. A bad setting is reported as the services report it (exit 2).",
    )
    parser.set_defaults(handler=show_settings)
