"""A PgBouncer of the test's own, in transaction pooling mode, in front of the test PostgreSQL.

    with PgBouncer.in_front_of(settings.database_dsn) as bouncer:
        bouncer.url_of(settings.database_dsn)  # the same database, through PgBouncer

It runs from Debian's `pgbouncer` binary on a free port, as the `postgres` system user when the
tests run as root (PgBouncer refuses to run as root), with trust authentication like the test
server's, and the pool small enough that clients share server connections (which is what breaks
session state: prepared statements, session settings, LISTEN)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.polling import free_port

BINARY = "/usr/sbin/pgbouncer"
START_SECONDS = 10.0
SERVER_POOL_SIZE = 4


class PgBouncer:
    def __init__(self, port: int, process: subprocess.Popen, directory: Path) -> None:
        self.port = port
        self.process = process
        self.directory = directory

    @classmethod
    @contextlib.contextmanager
    def in_front_of(cls, database_url: str) -> Iterator[PgBouncer]:
        url = make_url(database_url)
        port = free_port()
        directory = Path(tempfile.mkdtemp(prefix="userreg-pgbouncer-"))
        directory.chmod(0o755)  # readable by the user it runs as
        (directory / "userlist.txt").write_text(f'"{url.username or "postgres"}" ""\n')
        (directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={url.host or '127.0.0.1'} port={url.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {SERVER_POOL_SIZE}\nmax_client_conn = 1000\n"
        )
        for path in directory.iterdir():
            path.chmod(0o644)
        run_as = ["-u", "postgres"] if os.geteuid() == 0 and _user_exists("postgres") else []
        log = (directory / "pgbouncer.log").open("wb")
        process = subprocess.Popen(
            [BINARY, *run_as, str(directory / "pgbouncer.ini")], stdout=log, stderr=subprocess.STDOUT
        )
        bouncer = cls(port, process, directory)
        try:
            bouncer._wait_until_listening()
            yield bouncer
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
            shutil.rmtree(directory, ignore_errors=True)

    def url_of(self, database_url: str) -> str:
        """The same database (user, password, name) through this PgBouncer."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {(self.directory / 'pgbouncer.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError("pgbouncer did not listen in time")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
