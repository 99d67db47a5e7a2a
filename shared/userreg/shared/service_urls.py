"""`CONSOLE_SERVICE_URLS`: where the console's System page finds each service, as
"registration=http://registration:8080,mailer=…" (a setting of its own module: the parsing is
longer than the setting)."""

from __future__ import annotations

from urllib.parse import urlsplit

# The services the System page asks for /health and /ready.
CONSOLE_SERVICE_NAMES = ("registration", "confirmation-web", "mailer")


def parse_service_urls(value: str) -> dict[str, str]:
    """ "registration=http://registration:8080,mailer=…" as name → base URL. Each name must be one
    of CONSOLE_SERVICE_NAMES, at most once; each URL an absolute http(s) URL with no query, fragment
    or password ("" → no pairs)."""
    urls: dict[str, str] = {}
    example = "e.g. registration=http://registration:8080,mailer=http://mailer:8082"
    for pair in (part.strip() for part in value.split(",")):
        if not pair:
            continue
        name, equals, url = (piece.strip() for piece in pair.partition("="))
        if not equals or not name or not url:
            raise ValueError(f"must be comma-separated name=URL pairs, {example}")
        if name not in CONSOLE_SERVICE_NAMES:
            raise ValueError(f"names no service {name[:40]!r}: the services are {', '.join(CONSOLE_SERVICE_NAMES)}")
        if name in urls:
            raise ValueError(f"names {name} twice")
        try:
            parts = urlsplit(url)
            valid = (
                parts.scheme in ("http", "https")
                and bool(parts.hostname)
                and parts.port != 0
                and not parts.query
                and not parts.fragment
                and parts.password is None
            )
        except ValueError:  # a port that is no number
            valid = False
        if not valid:
            raise ValueError(
                f"the URL of {name} must be an absolute http(s) URL with no query or password, "
                f"e.g. {name}=http://{name}"
            )
        urls[name] = url.rstrip("/")
    return urls
