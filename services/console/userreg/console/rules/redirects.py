"""Where the sign-in page may send the operator afterwards: a path of the console only, never
another site (an open redirect would lend our name to a phishing link)."""

from __future__ import annotations

HOME = "/apps"


def safe_next(value: str | None) -> str:
    """`value` when it is a path on this site (`/…`, not `//host` or `/\\host`), else the home page."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return HOME
    if any(character in value for character in "\r\n\t\\") or value.startswith("/sign-in"):
        return HOME
    return value
