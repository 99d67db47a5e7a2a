"""Which POSTs come from our own page (defence in depth: the token is the only credential)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an absolute URL, lower-cased as browsers serialise it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_same_origin_post(headers: Mapping[str, str], public_origin: str) -> bool:
    """Whether a POST may be acted on: it must come from our own page, not from another site.

    The token in the form body already proves that the sender holds the link, so a forged
    cross-site POST could at most do what the link holder can do anyway. Refusing cross-site POSTs
    still closes the remaining abuse (another site making a visitor's browser confirm or ask for
    links on its behalf). Fetch-metadata (`Sec-Fetch-Site`) is the reliable signal: browsers send
    it on every request, and it is not blanked by `Referrer-Policy: no-referrer`, which makes form
    POSTs carry `Origin: null`. Without it (an older browser, a script), a real `Origin` header
    must be ours; a request with neither is not from a browser page and is judged by its token.
    """
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.strip().lower() == "same-origin"
    origin = headers.get("Origin")
    if origin is None or origin.strip().lower() == "null":
        return True
    return origin.strip().rstrip("/").lower() == public_origin
