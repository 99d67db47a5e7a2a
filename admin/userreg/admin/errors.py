"""The two ways an admin command can fail, each with its exit code.

Expected errors are raised as one of these and reported as one line on stderr; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class CommandError(Exception):
    """Base: a message for the operator and the process exit code."""

    exit_code = 1


class UsageError(CommandError):
    """Bad arguments: an unknown setting, a value of the wrong type, an unreadable file (exit 2)."""

    exit_code = 2


class CommandFailed(CommandError):
    """The arguments were fine but the work could not be done: unknown app, unreachable database,
    a rule of the data refused the change (exit 1)."""

    exit_code = 1
