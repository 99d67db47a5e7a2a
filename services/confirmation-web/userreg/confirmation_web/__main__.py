"""`userreg-confirmation-web`: serve the confirmation pages on BIND_HOST:CONFIRMATION_PORT until
SIGTERM or SIGINT, then finish in-flight requests, stop the outbox relay and close the pool."""

from __future__ import annotations

import logging

from userreg.confirmation_web.app import create_app
from userreg.shared.logs import configure_logging
from userreg.shared.runtime.processes import serve
from userreg.shared.settings_loader import load_settings

logger = logging.getLogger("userreg.confirmation_web")

SHUTDOWN_GRACE_SECONDS = 10.0
# A server process's whole stop: requests (10 s), then the outbox relay (10 s).
STOP_SECONDS = 25.0


def main() -> None:
    settings = load_settings("userreg-confirmation-web")
    configure_logging("confirmation-web", settings)
    logger.info(
        "confirmation-web listening on %s:%s; links point to %s",
        settings.bind_host,
        settings.confirmation_port,
        settings.public_confirmation_url,
    )
    # With WEB_PROCESSES > 1, as many processes serve the port (`shared/runtime/processes.py`).
    serve(
        create_app,
        settings,
        port=settings.confirmation_port,
        stop_seconds=STOP_SECONDS,
        access_log=None,  # the app's own access log (shared/runtime/access.py) writes no token
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
    )
    logger.info("confirmation-web stopped")


if __name__ == "__main__":
    main()
