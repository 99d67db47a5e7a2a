"""`userreg-confirmation-web`: serve the confirmation pages on BIND_HOST:CONFIRMATION_PORT until
SIGTERM or SIGINT, then finish in-flight requests, stop the outbox relay and close the pool."""

from __future__ import annotations

import logging

from aiohttp import web

from userreg.confirmation_web.access_log import RedactingAccessLogger
from userreg.confirmation_web.app import create_app
from userreg.shared.logs import configure_logging
from userreg.shared.settings import load_settings

logger = logging.getLogger("userreg.confirmation_web")

SHUTDOWN_GRACE_SECONDS = 10.0


def main() -> None:
    settings = load_settings("userreg-confirmation-web")
    configure_logging(settings.log_level)
    logger.info("confirmation-web listening on %s:%s; links point to %s", settings.bind_host,
                settings.confirmation_port, settings.public_confirmation_url)
    web.run_app(
        create_app(settings),
        host=settings.bind_host,
        port=settings.confirmation_port,
        access_log_class=RedactingAccessLogger,
        access_log=logging.getLogger("userreg.confirmation_web.access"),
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        print=None,
    )
    logger.info("confirmation-web stopped")


if __name__ == "__main__":
    main()
