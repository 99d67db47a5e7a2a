"""Reading a new password (a user's, an operator's) the way no one else sees it.

A password is never an argument: a process's command line is readable by every user of the machine
(ps, /proc) and stays in shell histories. It is typed twice at a prompt that does not echo it, or
piped in with `--password-stdin`."""

from __future__ import annotations

import getpass
import sys

from userreg.admin.errors import UsageError


def read_password(from_stdin: bool) -> str:
    """The first line of standard input (without its line break) with `--password-stdin`, else
    typed twice at a prompt that does not echo it, on a terminal."""
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise UsageError(
            "no password: type it at the prompt (run the command in a terminal) or pipe it in with --password-stdin"
        )
    try:
        password = getpass.getpass("Password: ")
        again = getpass.getpass("Password again: ")
    except EOFError:
        raise UsageError("no password typed") from None
    if again != password:
        raise UsageError("the two passwords differ")
    return password
