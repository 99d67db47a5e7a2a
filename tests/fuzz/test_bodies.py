"""Oversize and malformed bodies against the registration API (issue 5 item 5): each is refused with
its own code and HTTP status, in the `{"code", "message"}` envelope, and never with a 5xx.

The oversize requests are written on a raw socket, so the test decides what is sent, when, and
how much: a 10 MB body is refused on its headers when it announces its length, and as soon as
the 1 MiB limit is passed when it comes chunked (or gzip-compressed); either way the process
does not grow by what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestServer

from tests.fuzz.conftest import unique_email
from userreg.registration.app import create_app
from userreg.shared.db import App

TEN_MB = 10 * 1024 * 1024
CHUNK = 64 * 1024
LIMIT = 1024 * 1024  # the max_body_bytes default
ANSWER_TIMEOUT_SECONDS = 10.0


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the socket accepted before the answer came (or the server hung up)
    seconds: float

    def envelope(self) -> dict:
        value = json.loads(self.body)
        assert isinstance(value, dict) and set(value) == {"code", "message"}, value
        assert type(value["code"]) is int and isinstance(value["message"], str), value
        return value


@pytest.fixture
async def service(settings) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def app(make_app) -> App:
    return await make_app("Bodies")


def register_path(app: App) -> str:
    return f"/{app.app_id}/{app.rest_api_key}/users/register"


async def raw_request(
    server: TestServer,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None = None,
    *,
    chunks: int = 0,
    chunk: bytes = b"x" * CHUNK,
    chunked: bool = False,
) -> RawAnswer:
    """Send a request on a fresh socket and read the answer while the body is still going out.

    `body` is sent whole; otherwise `chunks` pieces of `chunk` are streamed (with chunked framing
    when `chunked`), stopping as soon as an answer arrives or the server closes the connection.
    The client's send buffer is kept small so that `sent` is close to what the server took in.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.transport.set_write_buffer_limits(high=CHUNK, low=0)
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    started = time.monotonic()
    sent = 0
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        answer = asyncio.create_task(_read_answer(reader))
        try:
            if body is not None:
                writer.write(body)
                await writer.drain()
                sent = len(body)
            for _ in range(chunks):
                if answer.done():
                    break
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                await writer.drain()
                sent += len(chunk)
            else:
                if chunked and chunks:
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server refused the rest: what matters is the answer it gave
        status, answer_headers, answer_body = await asyncio.wait_for(answer, ANSWER_TIMEOUT_SECONDS)
        return RawAnswer(status, answer_headers, answer_body, sent, time.monotonic() - started)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await writer.wait_closed()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    assert status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), status_line
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


# --- oversize ------------------------------------------------------------------------------------


async def test_a_10_mb_body_with_its_length_is_refused_before_any_of_it_is_sent(service, app):
    answer = await raw_request(
        service, "POST", register_path(app), {"Content-Type": "application/json", "Content-Length": str(TEN_MB)}
    )
    assert answer.status == 413
    assert answer.envelope()["code"] == 9003
    assert answer.sent == 0  # answered on the headers alone
    assert answer.headers.get("connection") == "close"


@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_a_10_mb_body_sent_right_away_is_cut_off_near_the_limit(service, app, framing):
    """The client does not wait for an answer: it streams 10 MB in 64 KiB pieces, chunked (no
    length known) or after its Content-Length. The service refuses it once it knows (at the
    headers, or on reading past the limit) and hangs up: far less than 10 MB is ever sent."""
    headers = {"Content-Type": "application/json"}
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(TEN_MB)
    answer = await raw_request(
        service, "POST", register_path(app), headers, chunks=TEN_MB // CHUNK, chunked=framing == "chunked"
    )
    assert answer.status == 413
    assert answer.envelope()["code"] == 9003
    assert answer.sent < TEN_MB // 2, f"{answer.sent} bytes went out before the refusal"
    print(f"\n{framing}: refused after {answer.sent / 1024:.0f} KiB sent, in {answer.seconds * 1000:.0f} ms")


async def test_the_process_does_not_grow_by_what_it_is_sent(service, app):
    """10 MB streamed at the service, chunked, twice: the memory Python allocates meanwhile (the
    client's buffers included) peaks at a few times the 1 MiB limit, well under the 10 MB, because
    the body is read only up to the limit and then dropped."""
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    await raw_request(service, "POST", register_path(app), headers, chunks=4, chunked=True)  # warm up
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        for _ in range(2):
            answer = await raw_request(
                service, "POST", register_path(app), headers, chunks=TEN_MB // CHUNK, chunked=True
            )
            assert answer.status == 413
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grown = peak - baseline
    print(
        f"\npeak growth while refusing 2 × 10 MB chunked bodies: {grown / 1024 / 1024:.2f} MiB "
        f"(limit {LIMIT / 1024 / 1024:.0f} MiB)"
    )
    assert grown < TEN_MB // 2, f"the process grew by {grown} bytes"


@pytest.mark.parametrize("operation", ["login", "status"])
async def test_every_body_taking_operation_refuses_10_mb(service, app, operation):
    key = app.server_api_key if operation == "status" else app.rest_api_key
    path = {"login": "/users/login", "status": f"/users/{app.app_id}/status"}[operation]
    method = "PUT" if operation == "status" else "POST"
    answer = await raw_request(
        service,
        method,
        f"/{app.app_id}/{key}{path}",
        {"Content-Type": "application/json", "Content-Length": str(TEN_MB)},
    )
    assert (answer.status, answer.envelope()["code"], answer.sent) == (413, 9003, 0)
    answer = await raw_request(
        service,
        method,
        f"/{app.app_id}/{key}{path}",
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        chunks=TEN_MB // CHUNK,
        chunked=True,
    )
    assert (answer.status, answer.envelope()["code"]) == (413, 9003)
    assert answer.sent < TEN_MB // 2


def gzip_bomb(inflated_mib: int) -> bytes:
    """A gzip body of a JSON object whose one string inflates to `inflated_mib` MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b'{"email": "a@example.com", "password": "pw", "bio": "')]
    parts += [compressor.compress(b"x" * (1024 * 1024)) for _ in range(inflated_mib)]
    return b"".join(parts) + compressor.compress(b'"}') + compressor.flush()


async def test_a_compressed_body_is_refused_without_being_inflated_whole(service, app):
    """A gzip bomb, ~100 KiB on the wire and 100 MiB inflated, is refused with 9003; aiohttp
    inflates it piece by piece and the read stops at the limit, so the memory used meanwhile
    stays a small multiple of the limit, whatever the body inflates to."""
    bomb = gzip_bomb(100)
    assert len(bomb) < LIMIT
    tracemalloc.start()
    try:
        answer = await raw_request(
            service,
            "POST",
            register_path(app),
            {"Content-Type": "application/json", "Content-Encoding": "gzip", "Content-Length": str(len(bomb))},
            bomb,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 413
    assert answer.envelope()["code"] == 9003
    print(f"\npeak while refusing a {len(bomb) / 1024:.0f} KiB gzip body of 100 MiB: {peak / 1024 / 1024:.1f} MiB")
    assert peak < 25 * 1024 * 1024, f"the process grew by {peak} bytes"


async def test_a_closed_app_says_3009_before_looking_at_the_size(service, make_app):
    """2002, 3009, then 9003, as the API document lists them."""
    closed = await make_app("Closed", registration_enabled=False)
    answer = await raw_request(
        service, "POST", register_path(closed), {"Content-Type": "application/json", "Content-Length": str(TEN_MB)}
    )
    assert (answer.status, answer.envelope()["code"], answer.sent) == (403, 3009, 0)


async def test_an_unknown_app_says_2002_before_looking_at_the_size(service, app):
    answer = await raw_request(
        service,
        "POST",
        f"/{app.app_id}/not-a-key/users/register",
        {"Content-Type": "application/json", "Content-Length": str(TEN_MB)},
    )
    assert (answer.status, answer.envelope()["code"], answer.sent) == (401, 2002, 0)


async def test_a_broken_chunked_framing_is_a_client_error(service, app):
    """aiohttp's parser refuses it before any handler runs (its own plain 400: this is not HTTP)."""
    answer = await raw_request(
        service,
        "POST",
        register_path(app),
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        b'5\r\n{"a":\r\nzz\r\nnot a chunk\r\n',
    )
    assert answer.status == 400, answer


# --- malformed bodies ----------------------------------------------------------------------------

JSON = "application/json"
NESTED = 100_000


def _valid(**extra: object) -> dict:
    return {"email": unique_email("body"), "password": "pw-123456", **extra}


def _user(extra: str = "", *, email: str = '"a@example.com"', password: str = '"pw"') -> bytes:
    """A registration body written by hand, so that it can hold what `json.dumps` never writes."""
    return f'{{"email": {email}, "password": {password}{extra}}}'.encode()


MALFORMED: dict[str, tuple[str | None, bytes, int, int]] = {
    # name: (Content-Type, body, HTTP status, code)
    "no body": (JSON, b"", 400, 3038),
    "blank body": (JSON, b"  \r\n\t ", 400, 3038),
    "truncated JSON": (JSON, b'{"email": "a@example.com", "password":', 400, 3038),
    "trailing garbage": (JSON, _user() + b" x", 400, 3038),
    "single quotes": (JSON, b"{'email': 'a@example.com'}", 400, 3038),
    "JSON null": (JSON, b"null", 400, 3038),
    "JSON array": (JSON, b"[" + _user() + b"]", 400, 3038),
    "JSON string": (JSON, b'"email"', 400, 3038),
    "JSON number": (JSON, b"12", 400, 3038),
    "no Content-Type": (None, json.dumps(_valid()).encode(), 415, 3038),
    "text/plain": ("text/plain", json.dumps(_valid()).encode(), 415, 3038),
    "form": ("application/x-www-form-urlencoded", b"email=a%40example.com&password=pw", 415, 3038),
    "multipart": ("multipart/form-data; boundary=x", b"--x\r\n\r\n--x--\r\n", 415, 3038),
    "JSON-ish type": ("application/jsonx", json.dumps(_valid()).encode(), 415, 3038),
    "invalid UTF-8 in a string": (JSON, b'{"email": "a@example.com", "password": "\xff\xfe"}', 400, 3038),
    "invalid UTF-8 outside strings": (JSON, b"\xc3" + _user(), 400, 3038),
    "latin-1 declared, latin-1 sent": (
        "application/json; charset=latin-1",
        '{"email": "a@example.com", "password": "pässword"}'.encode("latin-1"),
        400,
        3038,
    ),
    f"{NESTED:,} nested arrays": (JSON, b"[" * NESTED + b"]" * NESTED, 400, 3038),
    f"{NESTED:,} nested objects": (JSON, b'{"a":' * NESTED + b"1" + b"}" * NESTED, 400, 3038),
    f"{NESTED:,} unclosed arrays": (JSON, b"[" * NESTED, 400, 3038),
    "nesting inside a property": (JSON, _user(', "x": ' + "[" * NESTED + "]" * NESTED), 400, 3038),
    "NaN": (JSON, _user(', "score": NaN'), 400, 3038),
    "Infinity": (JSON, _user(', "score": Infinity'), 400, 3038),
    "-Infinity": (JSON, _user(', "score": -Infinity'), 400, 3038),
    "a number too big for a double": (JSON, _user(', "score": 1e999'), 400, 3021),
    "a 5,000-digit integer": (JSON, _user(', "n": ' + "9" * 5000), 400, 3038),
    "an integer over 64 bits": (JSON, _user(f', "n": {2**64}'), 400, 3021),
    "the same key twice": (JSON, _user(', "password": "b"'), 400, 3043),
    "keys differing by case": (JSON, _user(', "Email": "b@example.com"'), 400, 3043),
    "keys differing by case, later": (JSON, _user(', "PASSWORD": "x"'), 400, 3043),
    "NUL in a value": (JSON, _user(', "name": "a\\u0000b"'), 400, 3021),
    "NUL in the password": (JSON, _user(password='"p\\u0000w"'), 400, 3021),
    "NUL in the email": (JSON, _user(email='"a\\u0000@example.com"'), 400, 3021),
    "NUL in a name": (JSON, _user(', "a\\u0000b": "x"'), 400, 3021),
    "a lone surrogate": (JSON, _user(', "name": "\\ud800"'), 400, 3021),
    "a lone surrogate in a name": (JSON, _user(', "\\udfff": 1'), 400, 3021),
    "an object value": (JSON, _user(', "x": {"y": 1}'), 400, 3021),
    "an array value": (JSON, _user(', "x": [1]'), 400, 3021),
    "a number as the email": (JSON, _user(email="12"), 400, 3021),
    "a huge property name": (JSON, _user(f', "{"a" * 5000}": 1'), 400, 3021),
    "a thousand properties": (JSON, _user("".join(f', "p{i}": {i}' for i in range(1000))), 400, 3021),
    "a password over 1024 characters": (JSON, _user(password=f'"{"p" * 1025}"'), 400, 8000),
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_a_malformed_registration_is_refused_with_its_code(service, app, name):
    content_type, body, status, code = MALFORMED[name]
    headers = {"Content-Length": str(len(body))}
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = await raw_request(service, "POST", register_path(app), headers, body)
    assert (answer.status, answer.envelope()["code"]) == (status, code), answer.body
    assert "Traceback" not in answer.body.decode("utf-8", "replace")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
async def test_json_in_any_unicode_encoding_json_allows_is_read(service, app, encoding):
    """RFC 8259 names UTF-8; Python's reader also detects UTF-16/32 by their zero bytes. Whatever
    it reads, the user is the one sent."""
    email = unique_email("enc")
    body = json.dumps({"email": email, "password": "pw-123456", "name": "Zoë"}).encode(encoding)
    if encoding != "utf-8":
        body = body[2:] if encoding == "utf-16" else body[4:]  # json.loads refuses a BOM
    answer = await raw_request(
        service, "POST", register_path(app), {"Content-Type": JSON, "Content-Length": str(len(body))}, body
    )
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["email"] == email


@pytest.mark.parametrize("operation", ["login", "status"])
@pytest.mark.parametrize(
    "content_type, body, status",
    [
        (JSON, b"{not json", 400),
        (JSON, b"[" * NESTED, 400),
        (JSON, b"[" * NESTED + b"]" * NESTED, 400),
        (JSON, b'{"login": NaN, "password": Infinity, "userStatus": NaN}', 400),
        (JSON, b'{"login": "\xff", "password": "\xfe", "userStatus": "\xff"}', 400),
        ("text/plain", b'{"login": "a", "password": "b", "userStatus": "ENABLED"}', 415),
        (None, b'{"login": "a", "password": "b", "userStatus": "ENABLED"}', 415),
    ],
    ids=["not-json", "unclosed", "nested", "nan", "utf-8", "text", "no-type"],
)
async def test_other_operations_refuse_malformed_bodies_with_9005(service, app, operation, content_type, body, status):
    key = app.server_api_key if operation == "status" else app.rest_api_key
    path = {"login": "/users/login", "status": f"/users/{app.app_id}/status"}[operation]
    headers = {"Content-Length": str(len(body))}
    if content_type is not None:
        headers["Content-Type"] = content_type
    method = "PUT" if operation == "status" else "POST"
    answer = await raw_request(service, method, f"/{app.app_id}/{key}{path}", headers, body)
    assert (answer.status, answer.envelope()["code"]) == (status, 9005), answer.body


async def test_login_with_a_nul_or_a_lone_surrogate_is_just_a_wrong_login(service, app):
    for login in ('"a\\u0000b@example.com"', '"\\ud800@example.com"'):
        body = f'{{"login": {login}, "password": "p\\u0000w"}}'.encode()
        answer = await raw_request(
            service,
            "POST",
            f"/{app.app_id}/{app.rest_api_key}/users/login",
            {"Content-Type": JSON, "Content-Length": str(len(body))},
            body,
        )
        assert (answer.status, answer.envelope()["code"]) == (401, 3003), answer.body
