"""`userreg-console`: serve the console on BIND_HOST:CONSOLE_PORT until SIGTERM or SIGINT, then
finish in-flight requests and close the pool and the hashing workers."""

from __future__ import annotations

import logging

from aiohttp import web

from userreg.console.app import create_app
from userreg.shared.logs import configure_logging
from userreg.shared.settings_loader import load_settings

logger = logging.getLogger("userreg.console")

SHUTDOWN_GRACE_SECONDS = 10.0


def main() -> None:
    settings = load_settings("userreg-console")
    configure_logging("console", settings)
    logger.info("console listening on %s:%s", settings.bind_host, settings.console_port)
    web.run_app(
        create_app(settings),
        host=settings.bind_host,
        port=settings.console_port,
        access_log=None,  # the app's own access log (shared/runtime/access.py) writes no query string
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        print=None,
    )
    logger.info("console stopped")


if __name__ == "__main__":
    main()
