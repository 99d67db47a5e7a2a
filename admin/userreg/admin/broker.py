"""RabbitMQ as an admin command meets it: a failure to reach it is one clear line, not a log
message from the client library followed by a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import aio_pika.exceptions

from userreg.admin.database import describe_error
from userreg.admin.errors import CommandFailed
from userreg.shared.settings import Settings, mask_url

BROKER_ERRORS = (OSError, asyncio.TimeoutError, aio_pika.exceptions.AMQPError)


@contextlib.contextmanager
def quiet(logger_name: str) -> Iterator[None]:
    """Silence a library that logs the failure the command reports itself."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.asynccontextmanager
async def broker_errors(settings: Settings, doing: str) -> AsyncIterator[None]:
    """Turn a broker failure inside the block into `CommandFailed` saying what was being done."""
    with quiet("aiormq"):
        try:
            yield
        except BROKER_ERRORS as exc:
            raise CommandFailed(
                f"cannot {doing} on RabbitMQ at {mask_url(settings.amqp_dsn)}: {describe_error(exc)}"
            ) from exc
