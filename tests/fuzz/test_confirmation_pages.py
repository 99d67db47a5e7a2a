"""Hypothesis fuzzing of confirmation-web (docs/api.md, Confirmation pages and Sessions and password
recovery; issue 5 item 5, issue 11): random app ids, tokens (real confirmation and password-reset
tokens of every state among them), methods, headers, form bodies and new passwords against the
running service.

Whatever comes in, a link's path answers one of the twelve pages with that page's status (an
expired page also answers 200 when it sent a new link and 429 when it is asked again too soon; a
cross-site POST gets a failed page with 403; the reset form comes back 400 with what is wrong with
the password, or 503 when the hashing queue is full), never a 5xx otherwise, never the error page,
never a traceback. The only answers that are not pages are aiohttp's own for what no page is made
for: a method the path does not take (405) and a form body over the 64 KiB limit (413).
"""

from __future__ import annotations

import re
import string
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import FULL, MARKUP_NAME, ConfirmationWorld, Tally, weighted

# One worker runs the whole module, so that its request count is one figure.
pytestmark = pytest.mark.xdist_group("fuzz-confirmation-web")

EXAMPLES = 10000 if FULL else 1600
PAGES = {
    "confirmation-pending": {200},
    "confirmation-confirmed": {200},
    "confirmation-expired": {410, 200, 429},
    "confirmation-disabled": {403},
    "confirmation-failed": {404, 403},
    "password-reset": {200, 400, 503},
    "password-reset-done": {200},
    "password-reset-expired": {410, 200, 429},
    "password-reset-failed": {404, 403},
    "email-change-pending": {200},
    "email-change-done": {200},
    "email-change-failed": {404, 410, 409, 403},
}
# A status the service answers itself, as a page: only the reset form's "the hashing queue is full".
PAGE_5XX = {("password-reset", 503)}
OTHER_METHODS = ("PUT", "DELETE", "PATCH", "OPTIONS")
# aiohttp's own short answers for what no page is made for: a method the path does not take, a form
# over the size limit, and (for methods no page answers at all) a path that does not exist.
NOT_A_PAGE = {405, 413}
NOT_A_PAGE_OTHER_METHODS = {404, 405}
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "sqlalchemy", "asyncpg")
DATA_PAGE = re.compile(rb'<body[^>]*\bdata-page="([^"]+)"')
TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"

segments = st.text(min_size=0, max_size=60)
well_formed_tokens = st.text(TOKEN_ALPHABET, min_size=43, max_size=43)


def app_ids(world: ConfirmationWorld) -> st.SearchStrategy[str]:
    real = world.app_ids
    return weighted(
        (14, st.sampled_from(real)),
        (2, st.sampled_from([app_id.lower() for app_id in real])),
        (2, st.uuids().map(lambda u: str(u).upper())),
        (2, segments),
    )


def tokens(world: ConfirmationWorld, app_id: str, reset: bool = False, change: bool = False) -> st.SearchStrategy[str]:
    """Mostly a real token of this app (of every state; a reset token for the reset paths, an
    email-change token for the email-change paths), else one of the other app or of another kind, a
    well-formed unknown one, one a character short, or any text."""
    links = world.change_links if change else world.reset_links if reset else world.links
    own = [link.token for link in links if link.app_id.upper() == app_id.upper()]
    every = [link.token for link in world.links + world.reset_links + world.change_links]
    a_character_short = well_formed_tokens.map(lambda token: token[:-1])
    return weighted(
        (12 if own else 0, st.sampled_from(own or every)),
        (2, st.sampled_from(every)),
        (3, well_formed_tokens),
        (1, a_character_short),
        (2, segments),
    )


def headers_for(world: ConfirmationWorld, method: str) -> st.SearchStrategy[dict[str, str]]:
    # Printable ASCII, no leading or trailing blank (the client refuses to send those).
    header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)
    form = "application/x-www-form-urlencoded"
    content_type = weighted(
        (6, st.just(form)),
        (
            2,
            st.sampled_from(
                [
                    "multipart/form-data",
                    "multipart/form-data; boundary=x",
                    "application/json",
                    "text/plain",
                    f"{form}; charset=latin-1",
                    "garbage",
                ]
            ),
        ),
        (1, header_text),
    )
    return st.fixed_dictionaries(
        {"Content-Type": content_type} if method == "POST" else {},
        optional={
            "Accept-Language": weighted(
                (3, st.sampled_from(["de", "de-CH,de;q=0.9", "en-US", "fr;q=0", "*"])), (1, header_text)
            ),
            "Origin": weighted(
                (3, st.sampled_from([world.public_origin, "null", "https://evil.example"])), (1, header_text)
            ),
            "Sec-Fetch-Site": weighted(
                (4, st.just("same-origin")), (1, st.sampled_from(["cross-site", "none", "same-site", "garbage"]))
            ),
            "Sec-Purpose": st.sampled_from(["prefetch", "prefetch;prerender"]),
        },
    )


# New passwords: mostly short, sometimes about the 1024-character limit, any characters (NUL too).
passwords = weighted(
    (8, st.text(max_size=40)), (1, st.just("")), (1, st.integers(1000, 1100).map(lambda length: "p" * length))
)


@st.composite
def reset_fields(draw: st.DrawFn, world: ConfirmationWorld, app_id: str) -> dict[str, str]:
    """The reset form's fields: a token, a password and, more often than not, the same password
    repeated (a refused password leaves the link usable for the next draws; a set one ends it)."""
    password = draw(passwords)
    repeat = draw(weighted((3, st.just(password)), (2, passwords)))
    return {"token": draw(tokens(world, app_id, reset=True)), "password": password, "repeat": repeat}


def form_bodies(
    world: ConfirmationWorld, app_id: str, reset: bool = False, change: bool = False
) -> st.SearchStrategy[bytes | None]:
    names = ["token", "Token", "token[]", "x", ""] + (["password", "repeat"] if reset else [])
    fields = st.lists(
        st.tuples(st.sampled_from(names), st.one_of(tokens(world, app_id, reset, change), segments)), max_size=4
    )
    valid = (
        reset_fields(world, app_id)
        if reset
        else tokens(world, app_id, change=change).map(lambda token: {"token": token})
    )
    return weighted(
        (8, valid.map(lambda form: urlencode(form).encode())),
        (2, fields.map(lambda pairs: urlencode(pairs).encode())),
        (2, st.binary(max_size=300)),
        (1, st.none()),
        (1, st.sampled_from([16 * 1024, 70 * 1024, 200 * 1024]).map(lambda size: b"token=" + b"A" * size)),
    )


SHAPES = (
    ["link"] * 10
    + ["confirm"] * 4
    + ["resend"] * 4
    + ["reset-link"] * 6
    + ["reset"] * 5
    + ["reset-resend"] * 3
    + ["change-link"] * 4
    + ["change"] * 4
    + ["bare", "other"]
)
# Each shape's path after the app id; "link" shapes end in a drawn token.
PATHS = {
    "link": "confirm/",
    "confirm": "confirm",
    "resend": "confirm/resend",
    "reset-link": "reset-password/",
    "reset": "reset-password",
    "reset-resend": "reset-password/resend",
    "change-link": "change-email/",
    "change": "change-email",
    "bare": "",
}
METHODS = {
    "link": ["GET"] * 6 + ["HEAD"] * 2 + ["POST"] * 2 + list(OTHER_METHODS),
    "form": ["POST"] * 12 + ["GET"] * 2 + ["HEAD"] + list(OTHER_METHODS),
}


@st.composite
def page_requests(draw: st.DrawFn, world: ConfirmationWorld) -> tuple[str, str, str, dict[str, str], bytes | None]:
    """(shape, method, path, headers, body) of a request to one of the service's page paths."""
    app_id = draw(app_ids(world))
    shape = draw(st.sampled_from(SHAPES))
    app = quote(app_id, safe="")
    reset = shape.startswith("reset")
    change = shape.startswith("change")
    if shape in PATHS:
        path = f"/{app}/{PATHS[shape]}".rstrip("/")
        if shape.endswith("link"):
            path += "/" + quote(draw(tokens(world, app_id, reset, change)), safe="")
    else:
        parts = draw(st.lists(segments, min_size=1, max_size=4))
        path = "/" + "/".join(quote(part, safe="") for part in parts)
    method = draw(st.sampled_from(METHODS["link" if shape.endswith("link") else "form"]))
    body = draw(form_bodies(world, app_id, reset, change)) if method in ("POST", "PUT", "PATCH") else None
    return shape, method, path, draw(headers_for(world, method)), body


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_request_gets_a_page_with_its_status_or_a_plain_refusal(
    data: st.DataObject, confirmation_world: ConfirmationWorld, http: requests.Session, tally: Tally
) -> None:
    shape, method, path, headers, body = data.draw(page_requests(confirmation_world), label="request")
    response = http.request(
        method, confirmation_world.base_url + path, headers=headers, data=body, allow_redirects=False, timeout=30
    )
    content = response.content
    page_match = DATA_PAGE.search(content)
    page = page_match.group(1).decode() if page_match else None
    tally.record(f"{method} {shape}", response.status_code, page)

    assert response.status_code < 500 or (page, response.status_code) in PAGE_5XX, (
        f"{method} {path}: HTTP {response.status_code}"
    )
    assert not any(marker.encode() in content for marker in TRACEBACK_MARKERS), f"{method} {path}: internals"
    assert MARKUP_NAME.encode() not in content, f"{method} {path} shows the user's name unescaped"
    if method == "HEAD":
        assert content == b""
        return
    if page is not None:
        assert page in PAGES, f"{method} {path}: an unexpected page {page!r} ({response.status_code})"
        assert response.status_code in PAGES[page], f"{method} {path}: {page}, HTTP {response.status_code}"
        assert response.headers["Content-Type"].startswith("text/html")
    else:
        allowed = NOT_A_PAGE_OTHER_METHODS if method in OTHER_METHODS else NOT_A_PAGE
        assert response.status_code in allowed, (
            f"{method} {path}: HTTP {response.status_code} without a page: {content[:200]!r}"
        )


# --- what the fuzzer found, pinned ---------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"
UNREADABLE_FORMS = {
    "invalid UTF-8": (FORM, b"token=\xff\xfe"),
    "a charset nobody knows": (f"{FORM}; charset=no-such-charset", b"token=abc"),
    "multipart without a boundary": ("multipart/form-data", b"token=abc"),
    "multipart with a boundary never met": ("multipart/form-data; boundary=x", b"token=abc"),
    "multipart with a boundary too long": ("multipart/form-data; boundary=" + "b" * 80, b"--b\r\n"),
    "a part without a name": (
        "multipart/form-data; boundary=x",
        b"--x\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--x--\r\n",
    ),
    "a part in an unknown transfer encoding": (
        "multipart/form-data; boundary=x",
        (
            b'--x\r\nContent-Disposition: form-data; name="token"\r\n'
            b"Content-Transfer-Encoding: rot13\r\n\r\nabc\r\n--x--\r\n"
        ),
    ),
    "a nested multipart": (
        "multipart/form-data; boundary=x",
        (
            b'--x\r\nContent-Disposition: form-data; name="token"\r\n'
            b"Content-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\n\r\nabc\r\n--y--\r\n--x--\r\n"
        ),
    ),
    "a part in a charset nobody knows": (
        "multipart/form-data; boundary=x",
        (
            b'--x\r\nContent-Disposition: form-data; name="token"\r\n'
            b"Content-Type: text/plain; charset=nope\r\n\r\nabc\r\n--x--\r\n"
        ),
    ),
}


FAILED_PAGE_OF = {
    "confirm": b"confirmation-failed",
    "confirm/resend": b"confirmation-failed",
    "reset-password": b"password-reset-failed",
    "reset-password/resend": b"password-reset-failed",
    "change-email": b"email-change-failed",
}


@pytest.mark.parametrize("action", list(FAILED_PAGE_OF))
@pytest.mark.parametrize("name", list(UNREADABLE_FORMS))
def test_a_form_that_cannot_be_read_shows_the_failed_page(
    confirmation_world: ConfirmationWorld, http: requests.Session, action: str, name: str
) -> None:
    content_type, body = UNREADABLE_FORMS[name]
    response = http.post(
        f"{confirmation_world.base_url}/{confirmation_world.app_ids[0]}/{action}",
        data=body,
        headers={"Content-Type": content_type, "Sec-Fetch-Site": "same-origin"},
        timeout=30,
    )
    assert response.status_code == 404, response.text[:300]
    assert DATA_PAGE.search(response.content).group(1) == FAILED_PAGE_OF[action]


@pytest.mark.parametrize("app_id", ["%00", "A%00B", "%ED%A0%80", "%F4%90%80%80", "x" * 37, "%0A", "%C0%80"])
def test_an_app_id_no_app_can_have_shows_the_failed_page(
    confirmation_world: ConfirmationWorld, http: requests.Session, app_id: str
) -> None:
    world = confirmation_world
    for links, action, failed in (
        (world.links, "confirm", b"confirmation-failed"),
        (world.reset_links, "reset-password", b"password-reset-failed"),
    ):
        token = next(link.token for link in links if link.state == "pending")
        base = f"{confirmation_world.base_url}/{app_id}/{action}"
        form = {"token": token, "password": "p", "repeat": "p"}
        for method, url, body in (
            ("GET", f"{base}/{token}", None),
            ("POST", base, form),
            ("POST", f"{base}/resend", {"token": token}),
        ):
            response = http.request(method, url, data=body, headers={"Sec-Fetch-Site": "same-origin"}, timeout=30)
            assert response.status_code == 404, (method, url, response.status_code)
            assert DATA_PAGE.search(response.content).group(1) == failed
