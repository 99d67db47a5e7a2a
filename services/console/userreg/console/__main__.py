"""`userreg-console`: serve the console on BIND_HOST:CONSOLE_PORT until SIGTERM or SIGINT, then
finish in-flight requests and close the pool and the hashing workers."""

from __future__ import annotations

import logging

from aiohttp import web

from userreg.console.access_log import PathOnlyAccessLogger
from userreg.console.app import create_app
from userreg.shared.logs import configure_logging
from userreg.shared.settings import load_settings

logger = logging.getLogger("userreg.console")

SHUTDOWN_GRACE_SECONDS = 10.0


def main() -> None:
    settings = load_settings("userreg-console")
    configure_logging(settings.log_level)
    logger.info("console listening on %s:%s", settings.bind_host, settings.console_port)
    web.run_app(
        create_app(settings),
        host=settings.bind_host,
        port=settings.console_port,
        access_log_class=PathOnlyAccessLogger,
        access_log=logging.getLogger("userreg.console.access"),
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        print=None,
    )
    logger.info("console stopped")


if __name__ == "__main__":
    main()
