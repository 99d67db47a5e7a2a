"""`userreg-registration` / `python -m userreg.registration`: serve the registration API until
SIGTERM or SIGINT, then finish the requests in flight and close every resource."""

from __future__ import annotations

import logging

from aiohttp import web

from userreg.registration.app import create_app
from userreg.shared.logs import configure_logging
from userreg.shared.settings import Settings

logger = logging.getLogger("userreg.registration")

SHUTDOWN_TIMEOUT_SECONDS = 10.0


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    logger.info("starting registration service on %s:%s with settings %s", settings.bind_host,
                settings.registration_port, settings.describe())
    # run_app turns SIGTERM/SIGINT into a graceful shutdown: stop accepting, let requests in
    # flight finish (up to the timeout), then run every cleanup_ctx exit.
    web.run_app(create_app(settings), host=settings.bind_host, port=settings.registration_port,
                shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS, access_log=None, print=None,
                handle_signals=True)
    logger.info("registration service stopped")


if __name__ == "__main__":
    main()
