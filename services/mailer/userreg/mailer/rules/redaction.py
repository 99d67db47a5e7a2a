"""Link tokens out of what the mailer keeps and logs. SMTP servers echo parts of the message back
in errors; a link's token (a confirmation link's `/confirm/<token>`, a password-reset link's
`/reset-password/<token>`) must not travel on into logs, headers or the dead-letter table, in
whatever encoding the message carried it. A reset token is the more dangerous: whoever holds it
can set the user's password."""

from __future__ import annotations

import re

REDACTED = "[redacted]"
# The path segments that precede a token in the links userreg emails (`tokens.confirmation_url`,
# `tokens.password_reset_url`, `email_changes.email_change_url`).
LINK_PATHS = ("confirm", "reset-password", "change-email")
# A link's token as written (or with its slashes quoted-printable or percent encoded).
_LINK_TOKEN = re.compile(
    r"((?:/|=2F|%2F)(?:" + "|".join(map(re.escape, LINK_PATHS)) + r")(?:/|=2F|%2F))"
    r"[A-Za-z0-9_-]{8,}",
    re.IGNORECASE,
)
# Quoted-printable text broken by soft line breaks ("=" at a line's end), with the words on both
# sides: a token split there would otherwise survive in pieces no other rule recognises. The second
# form is a soft break whose line end was already turned into a space.
# (Matches start at a word's start only, which keeps the search linear on long unbroken text.)
_QP_SOFT_BROKEN = re.compile(r"(?<!\S)(?:\S*=[ \t]*(?:\r\n|\r|\n)[ \t]*|\S+=[ ](?=\S))+\S*")
# A base64 run long enough to carry part of a token (a token is 43 characters, 58 in base64; the
# bodies are base64). Words and names such as ConnectionRefusedError are runs too, but letters
# only: a shorter run is taken for base64 when it has a digit, "+", "/" or "=" in it (20 base64
# characters almost always have one), a run of 40 or more whatever it holds. URLs are matched
# first and kept (their link tokens are gone by then): a URL's path is a run too, and people
# reading a failure want to see which link it was.
_BASE64_RUN_OR_URL = re.compile(r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]*)|[A-Za-z0-9+/_]{20,}={0,2}")
_NOT_A_LETTER = re.compile(r"[0-9+/=]")
_MAY_BE_A_WORD = 40


def _base64_run(match: re.Match[str]) -> str:
    run = match.group()
    if match.group("url") or (len(run) < _MAY_BE_A_WORD and not _NOT_A_LETTER.search(run)):
        return run
    return REDACTED


def redact(text: str) -> str:
    """The text with every form of a link's token (confirmation or password reset) replaced by
    "[redacted]": the plain link's token, quoted-printable text that soft line breaks split (with the words around the
    break), and runs of base64 long enough to carry part of a token. What is left, an SMTP reply's
    code and its words, stays readable; a base64 remnant shorter than 20 characters (a line's
    tail) may stay, too short to hold a token."""
    text = _QP_SOFT_BROKEN.sub(REDACTED, text)
    text = _LINK_TOKEN.sub(r"\1" + REDACTED, text)
    return _BASE64_RUN_OR_URL.sub(_base64_run, text)
