"""Logging set-up shared by every process, in one of two formats (LOG_FORMAT):

* `text` (the default): one line per record, `time level logger message`, then what the record is
  about as `request_id=… app_id=… event_id=…` when known;
* `json`: one JSON object per line with `time`, `service`, `level`, `logger`, `message`, the same
  `request_id`, `app_id` and `event_id` when known, a record's own `fields` (the access log's
  method, path, status and duration) and the traceback of an exception in `exception`.

What a record is about travels in context variables, set with `log_context`: the access log
middleware (`runtime.access`) names the request and its app, the mailer and the outbox relay the
event they handle. Every line passes through `redact` whatever the format: a URL's password and the
token of a link userreg emails never reach a log, even from a message that quoted one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from userreg.shared.settings import mask_url

if TYPE_CHECKING:
    from userreg.shared.settings import Settings

LOG_FORMATS = ("text", "json")

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
APP_ID: ContextVar[str | None] = ContextVar("app_id", default=None)
EVENT_ID: ContextVar[str | None] = ContextVar("event_id", default=None)
_CONTEXT = (("request_id", REQUEST_ID), ("app_id", APP_ID), ("event_id", EVENT_ID))

# A token in the links userreg emails: `/{appId}/confirm/<token>`, `/{appId}/reset-password/<token>`,
# `/{appId}/change-email/<token>` (43 characters; shorter words such as `/confirm/resend` are paths,
# not tokens).
_LINK_TOKEN = re.compile(r"(/(?:confirm|reset-password|change-email)/)[A-Za-z0-9_-]{20,}")
REDACTED = "[redacted]"
_PLAIN_WORD = re.compile(r"[A-Za-z0-9._-]{1,64}")


def plain_word(value: object) -> str | None:
    """The value when it is a plain word (at most 64 letters, digits, `.`, `_`, `-`), else None:
    what may stand in a log line as an id when it comes from outside."""
    return value if isinstance(value, str) and _PLAIN_WORD.fullmatch(value) else None


def redact(text: str) -> str:
    """The text with URL passwords masked and link tokens replaced by "[redacted]"."""
    return _LINK_TOKEN.sub(r"\1" + REDACTED, mask_url(text))


@contextlib.contextmanager
def log_context(
    *, request_id: str | None = None, app_id: str | None = None, event_id: str | None = None
) -> Iterator[None]:
    """Within the block (and the tasks it starts), every record names these; None leaves a value
    as the surrounding block set it."""
    given = ((REQUEST_ID, request_id), (APP_ID, app_id), (EVENT_ID, event_id))
    tokens = [(variable, variable.set(value)) for variable, value in given if value is not None]
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


def context_fields() -> dict[str, str]:
    """The request, app and event the current code works for, those that are known."""
    return {name: value for name, variable in _CONTEXT if (value := variable.get()) is not None}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = " ".join(f"{name}={value}" for name, value in context_fields().items())
        return f"{line} {context}" if context else line

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "service": self._service,
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **context_fields(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update((name, value) for name, value in fields.items() if name not in entry)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_handler(service: str, log_format: str, stream: TextIO) -> logging.Handler:
    """A handler writing `service`'s records to `stream` in `log_format` ("text" or "json")."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(service) if log_format == "json" else TextFormatter())
    return handler


def configure_logging(service: str, settings: Settings) -> None:
    """Idempotent; a process calls it once at start-up (never at import), with its own name."""
    logging.basicConfig(
        level=settings.log_level.upper(), force=True, handlers=[log_handler(service, settings.log_format, sys.stderr)]
    )
    # aio-pika's reconnect chatter is noise at INFO; aiohttp's own access log is replaced by
    # `runtime.access`, which never writes a token or a query string.
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
