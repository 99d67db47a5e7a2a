"""The log formats (LOG_FORMAT text or json): what a line holds, the context it names, and that
no URL password or link token survives in it."""

from __future__ import annotations

import io
import json
import logging

import pytest

from userreg.shared.logs import configure_logging, context_fields, log_context, log_handler, plain_word
from userreg.shared.settings import Settings

TOKEN = "Zk3v9QpL0wXa7bC2dE5fG8hJ1kM4nP6rS-T_uVyWz0"


def write(log_format: str, emit) -> str:
    """What `emit(logger)` writes through a handler of `log_format`."""
    stream = io.StringIO()
    logger = logging.getLogger(f"test.logs.{log_format}")
    logger.propagate, logger.level = False, logging.DEBUG
    handler = log_handler("registration", log_format, stream)
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_json_line_is_one_object_with_the_fields_and_the_context():
    def emit(logger):
        with log_context(request_id="req-1", app_id="APP-1"), log_context(event_id="evt-1"):
            logger.info("user %s registered", "u1", extra={"fields": {"status": 200, "level": "forged"}})
        logger.warning("outside")

    first, second = [json.loads(line) for line in write("json", emit).splitlines()]
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert {key: first[key] for key in ("service", "level", "logger", "message")} == {
        "service": "registration",
        "level": "INFO",
        "logger": "test.logs.json",
        "message": "user u1 registered",
    }
    assert (first["request_id"], first["app_id"], first["event_id"]) == ("req-1", "APP-1", "evt-1")
    assert first["status"] == 200  # a record's own fields, never over the standard ones
    assert set(second) == {"time", "service", "level", "logger", "message"}


def test_an_exception_is_a_field_of_its_line():
    def emit(logger):
        try:
            raise RuntimeError(f"failed at http://127.0.0.1:8081/APP/confirm/{TOKEN}")
        except RuntimeError:
            logger.exception("it broke")

    (line,) = write("json", emit).splitlines()
    entry = json.loads(line)
    assert entry["message"] == "it broke" and entry["level"] == "ERROR"
    assert "RuntimeError" in entry["exception"] and "Traceback" in entry["exception"]
    assert TOKEN not in line and "/APP/confirm/[redacted]" in entry["exception"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_url_password_or_link_token_reaches_a_line(log_format):
    def emit(logger):
        logger.info("broker at amqp://guest:s3cret@rabbit:5672/ failed")
        logger.info("link https://pages.example/%s/reset-password/%s sent", "APP", TOKEN)
        logger.info("link https://pages.example/APP/change-email/%s sent", TOKEN)
        logger.info("POST /APP/confirm/resend 200")  # a path, not a token

    written = write(log_format, emit)
    assert "s3cret" not in written and TOKEN not in written
    assert "amqp://guest:***@rabbit" in written and "/APP/reset-password/[redacted]" in written
    assert "/APP/confirm/resend" in written


def test_a_text_line_names_its_context_after_the_message():
    def emit(logger):
        with log_context(request_id="req-2", app_id="APP-2"):
            logger.info("GET /x 200")
        logger.info("plain")

    with_context, plain = write("text", emit).splitlines()
    assert with_context.endswith(" INFO test.logs.text GET /x 200 request_id=req-2 app_id=APP-2")
    assert plain.endswith(" INFO test.logs.text plain")


def test_a_context_ends_with_its_block():
    with log_context(request_id="outer"):
        with log_context(request_id="inner", app_id="A"):
            assert context_fields() == {"request_id": "inner", "app_id": "A"}
        assert context_fields() == {"request_id": "outer"}
    assert context_fields() == {}


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("0b8e5c1e-3a4f-4f0e-9d7b-1c2d3e4f5a6b", True),
        ("a.b_c-D9", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("", False),
        ("a b", False),
        ("a\nb", False),
        ("ünï", False),
        (None, False),
        (42, False),
    ],
)
def test_plain_words(value, plain):
    assert plain_word(value) == (value if plain else None)


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="text, json"):
        log_handler("registration", "xml", io.StringIO())


def test_configure_logging_writes_the_settings_format_to_stderr(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("mailer", Settings(log_format="json", log_level="warning"))
        logging.getLogger("userreg.test").warning("hello")
        logging.getLogger("userreg.test").info("not at WARNING")
        entry = json.loads(capsys.readouterr().err.strip())
        assert (entry["service"], entry["message"]) == ("mailer", "hello")
    finally:
        root.handlers[:], root.level = saved
