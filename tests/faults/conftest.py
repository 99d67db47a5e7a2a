"""The fault tests' system: every service a real process, reaching RabbitMQ, PostgreSQL
(registration) and the SMTP server (mailer) through proxies the tests cut. One system serves the
package; before and after each test it is made whole again, whatever the test did to it.

Every module here carries `pytest.mark.xdist_group("faults")`: one worker runs them, one by one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.system import System
from userreg.shared.settings import Settings


@pytest.fixture(scope="package")
def system(settings: Settings) -> Iterator[System]:
    running = System(settings, "faults", via_proxies=True)
    running.start()
    yield running
    running.stop()
    # Everything the tests made the services do, the faults included: none of it logged a secret.
    assert not running.leaks(), running.leaks()


@pytest.fixture(autouse=True)
async def whole_system(system: System) -> AsyncIterator[System]:
    await system.make_whole()
    yield system
    await system.make_whole()
