"""`userreg-mailer`: run the mailer with settings from the environment until SIGINT/SIGTERM."""

from __future__ import annotations

import logging

from aiohttp import web

from userreg.mailer.app import create_app
from userreg.shared.logs import configure_logging
from userreg.shared.settings_loader import load_settings

logger = logging.getLogger(__name__)


def main() -> None:
    settings = load_settings("userreg-mailer")
    configure_logging("mailer", settings)
    logger.info("mailer starting: %s", settings.describe())
    # run_app turns SIGTERM into a clean shutdown: the consumer finishes the messages in hand first.
    web.run_app(
        create_app(settings),
        host=settings.bind_host,
        port=settings.mailer_port,
        print=None,
        access_log=None,
        shutdown_timeout=5,
    )


if __name__ == "__main__":
    main()
