"""`userreg-registration` / `python -m userreg.registration`: serve the registration API until
SIGTERM or SIGINT, then finish the requests in flight and close every resource."""

from __future__ import annotations

import logging

from userreg.registration.app import create_app
from userreg.shared.logs import configure_logging
from userreg.shared.runtime.processes import serve
from userreg.shared.settings_loader import load_settings

logger = logging.getLogger("userreg.registration")

SHUTDOWN_TIMEOUT_SECONDS = 10.0
# A server process's whole stop: requests (10 s), the outbox relay (10 s), the hashing workers (20 s).
STOP_SECONDS = 45.0


def main() -> None:
    settings = load_settings("userreg-registration")
    configure_logging("registration", settings)
    logger.info(
        "starting registration service on %s:%s with settings %s",
        settings.bind_host,
        settings.registration_port,
        settings.describe(),
    )
    # run_app turns SIGTERM/SIGINT into a graceful shutdown: stop accepting, let requests in
    # flight finish (up to the timeout), then run every cleanup_ctx exit. handler_cancellation:
    # the handler of a client that disconnected is cancelled, so a login it left waiting for the
    # password-hashing queue is dropped from it rather than hashed for nobody (the README's Security section).
    # With WEB_PROCESSES > 1, as many processes serve the port (`shared/runtime/processes.py`).
    serve(
        create_app,
        settings,
        port=settings.registration_port,
        stop_seconds=STOP_SECONDS,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        access_log=None,
        handle_signals=True,
        handler_cancellation=True,
    )
    logger.info("registration service stopped")


if __name__ == "__main__":
    main()
