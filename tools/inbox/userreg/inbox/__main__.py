"""`userreg-inbox`: run the local inbox with settings from the environment until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from userreg.inbox.server import Inbox
from userreg.shared.logs import configure_logging
from userreg.shared.settings import Settings
from userreg.shared.settings_loader import load_settings


async def serve(settings: Settings) -> None:
    """Run the inbox until SIGINT/SIGTERM."""
    inbox = Inbox(host=settings.bind_host, smtp_port=settings.inbox_smtp_port, http_port=settings.inbox_http_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await inbox.start()
    try:
        await stop.wait()
    finally:
        await inbox.stop()


def main() -> None:
    settings = load_settings("userreg-inbox")
    configure_logging("inbox", settings)
    # aiosmtpd logs every connection at INFO; a development inbox does not need that.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
