"""A rotate form's stamp of the keys its page was shown with: rotating again from an old page (or
by reloading the page that answered a rotation, which posts its form again) would replace keys the
operator has just copied, so such a form rotates nothing. The stamp is an HMAC of the app's REST
key under the operator's session token: it tells neither the key nor anything usable elsewhere."""

from __future__ import annotations

import hashlib
import hmac

_PURPOSE = b"userreg-console keys stamp\x00"
FIELD = "keys_stamp"


def keys_stamp(session_token: str, rest_api_key: str) -> str:
    return hmac.new(session_token.encode(), _PURPOSE + rest_api_key.encode(), hashlib.sha256).hexdigest()


def stamp_matches(session_token: str, rest_api_key: str, given: str) -> bool:
    """Whether a posted stamp is of these keys, for this session (compared in constant time)."""
    return hmac.compare_digest(keys_stamp(session_token, rest_api_key), given.encode("ascii", "replace").decode())
