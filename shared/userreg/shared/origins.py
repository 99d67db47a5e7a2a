"""Web origins as an app's `allowedOrigins` holds them (docs/api.md, Browser clients): each in the form a browser sends
in its `Origin` header (`scheme://host[:port]`: lower case, the host in IDNA form, without the
scheme's default port), so that a request's origin is allowed exactly when it is one of them.
Registration applies them (its CORS rules); the command and the console validate what an operator
writes."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

ANY_ORIGIN = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_IPV6 = re.compile(r"[0-9a-f:.]+")


def normalize_origin(text: str) -> str | None:
    """The origin as a browser serialises it (`https://example.com`, `http://localhost:3000`), or
    None when `text` is not an origin: a path, a query, a fragment or user info makes it a URL."""
    text = text.strip()
    if not text or any(ord(char) < 0x21 or ord(char) == 0x7F for char in text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if (
        not _SCHEME.fullmatch(scheme)
        or not host
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or text.endswith(("?", "#"))
    ):
        return None
    if parts.netloc.startswith("["):
        if not _IPV6.fullmatch(host):
            return None
        host = f"[{host}]"
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
        if not _HOST_NAME.fullmatch(host):
            return None
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def parse_allowed_origins(text: str) -> str:
    """An operator's `allowedOrigins` as it is stored: `*`, or the origins (separated by spaces or
    commas) in browser form, each once, in the order given. ValueError names what is wrong."""
    entries = [entry for entry in re.split(r"[\s,]+", text.strip()) if entry]
    if not entries:
        raise ValueError("give * or the origins allowed, e.g. https://app.example.com http://localhost:3000")
    if ANY_ORIGIN in entries:
        if len(entries) > 1:
            raise ValueError("* allows every origin: give it alone")
        return ANY_ORIGIN
    origins: list[str] = []
    for entry in entries:
        origin = normalize_origin(entry)
        if origin is None:
            raise ValueError(f"{entry!r} is not an origin (scheme://host[:port], without a path)")
        if origin not in origins:
            origins.append(origin)
    return " ".join(origins)
