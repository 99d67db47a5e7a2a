"""The CSRF token of a form: an HMAC of the operator's session token, so nothing is stored and every
replica computes the same token. Only a page served to the signed-in browser can know it (the
session cookie is HttpOnly and SameSite=Strict), so a form posted from anywhere else lacks it."""

from __future__ import annotations

import hashlib
import hmac

# The session token is the key; this names the purpose, so the digest is good for nothing else.
_PURPOSE = b"userreg-console form"
FIELD = "csrf_token"


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, given: str) -> bool:
    """Whether a form's token is this session's (compared in constant time)."""
    return hmac.compare_digest(csrf_token(session_token), given.encode("ascii", "replace").decode())
