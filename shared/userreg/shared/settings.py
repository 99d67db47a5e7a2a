"""Every setting of every userreg service, read from the environment in this one place.

Secrets are `SecretStr`, so printing or logging a `Settings` never shows them; `describe()` gives
an operator-friendly dump with passwords inside URLs masked too. Every process reads its settings
with `settings_loader.load_settings`, which reports bad ones as one line each, naming the environment variable.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from userreg.shared.service_urls import parse_service_urls

# The password of a URL: what follows `scheme://user:` up to the authority's last `@`.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^/\s]*@")


def mask_url(text: str) -> str:
    """The URL (or any text with URLs in it) with every password replaced by `***`, for logs,
    printed settings and error messages."""
    return _URL_PASSWORD.sub(r"\1***@", text)


class Settings(BaseSettings):
    """Validated once at start-up; services receive it, nothing reads `os.environ` elsewhere."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/userreg")
    # DATABASE_URL goes through a pooler in transaction mode (PgBouncer's `pool_mode = transaction`):
    # then no prepared statement outlives its transaction and no session setting is sent at connect
    # (PgBouncer refuses unknown startup parameters; set the timeouts on the role instead, see the
    # README), and what needs a session of its own connects to DATABASE_DIRECT_URL.
    database_transaction_pooler: bool = False
    # PostgreSQL itself, for what needs a session: the LISTEN loops and the migrations' advisory
    # lock. Unset: DATABASE_URL (right whenever that is not a transaction pooler).
    database_direct_url: SecretStr | None = None
    # Connections to PostgreSQL, kept few so that every replica fits into the server's
    # max_connections (100 by default; see the README's "Connection budget", which
    # tests/system/test_connection_budget.py keeps true). A process's engine keeps up to
    # DATABASE_POOL_SIZE connections and opens up to DATABASE_MAX_OVERFLOW more under load (closed
    # again when given back); confirmation-web's read pool holds DATABASE_POOL_SIZE more, and each
    # LISTEN loop (outbox relay, tenant cache) one.
    database_pool_size: int = Field(5, ge=1)
    database_max_overflow: int = Field(2, ge=0)
    # Bounded waits: nothing a process does with the database waits for ever. The statement, lock
    # and idle-in-transaction timeouts are the server's (sent as session settings when a connection
    # opens; 0 turns one off, e.g. for an admin command that re-keys a very large app).
    # Connecting (TCP, TLS, authentication) may take this long.
    database_connect_timeout: float = Field(5.0, gt=0)
    # The server cancels a statement that runs longer; the connection stays usable.
    database_statement_timeout: float = Field(30.0, ge=0)
    # A statement that waited this long for a lock fails, rather than queueing behind a long transaction.
    database_lock_timeout: float = Field(10.0, ge=0)
    # The server ends a session that sits idle inside a transaction this long, which releases its
    # locks: a process that hangs, or vanished behind a dead network, mid-transaction holds no row
    # for longer. It must be longer than every wait a healthy process makes inside a transaction:
    # the outbox relay publishes the rows it claimed while holding their locks, for up to
    # PUBLISH_TIMEOUT_SECONDS (15 s, shared/outbox.py); with 60 s a stuck relay's rows go to another
    # replica's relay within a minute (tests/integration/shared/test_database_timeouts.py checks the relation).
    database_idle_in_transaction_timeout: float = Field(60.0, ge=0)
    # The client's own bound on each round trip (a statement, a commit, a close): a connection that
    # went silent (a network that drops packets instead of refusing them) fails after this long
    # rather than in the minutes TCP takes to give up. Longer than the statement timeout, so a slow
    # statement is cancelled by the server first, cleanly. 0: no bound.
    database_command_timeout: float = Field(35.0, ge=0)
    # TCP keepalive on both ends of every connection: probes after this many idle seconds, then
    # every interval; after count unanswered ones the connection is dead (25 s with the defaults).
    # Data that stays unacknowledged gives up after the same time (TCP_USER_TIMEOUT).
    database_tcp_keepalives_idle: int = Field(10, ge=1)
    database_tcp_keepalives_interval: int = Field(5, ge=1)
    database_tcp_keepalives_count: int = Field(3, ge=1)
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    events_exchange: str = "userreg.events"

    public_confirmation_url: str = "http://127.0.0.1:8081"
    registration_port: int = 8080
    confirmation_port: int = 8081
    mailer_port: int = 8082
    console_port: int = 8083
    # The local development inbox (SMTP server + web page listing what it received).
    inbox_smtp_port: int = 1025
    inbox_http_port: int = 8025
    bind_host: str = "127.0.0.1"
    # Where the console's System page reaches each service: "name=URL" pairs, comma-separated (names
    # in CONSOLE_SERVICE_NAMES). A service not named is asked on BIND_HOST and its port, which is
    # right only when it runs on the console's host (not under compose or Kubernetes).
    console_service_urls: str = ""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: bool = False
    smtp_starttls: bool = False
    smtp_timeout: float = Field(30.0, gt=0)
    mail_from: str = "userreg <no-reply@userreg.local>"
    # Seconds to wait before each retry of a transient SMTP failure, comma-separated; their number is
    # the number of retries before an email is dead-lettered. Each delay has a queue of its own.
    mailer_retry_delays: str = "5,30,300,1800,7200"
    mailer_prefetch: int = Field(64, ge=1)
    # SMTP connections the mailer keeps open and reuses across messages.
    mailer_smtp_connections: int = Field(8, ge=1)
    # A mailer's claim on an email it is sending (a lease): renewed every third of it while the
    # mailer lives, so a crashed mailer's emails go to another one within about this long.
    mailer_claim_seconds: float = Field(15.0, ge=1, le=3600)
    # How long records of sent emails and replayed dead letters are kept before the mailer prunes
    # them. A redelivered event is recognised as sent for this long.
    mail_retention_days: int = Field(30, ge=1)

    # argon2id cost; the defaults are OWASP's minimum recommendation (m=19 MiB, t=2, p=1).
    argon2_memory_kib: int = Field(19456, ge=8)
    argon2_time_cost: int = Field(2, ge=1)
    argon2_parallelism: int = Field(1, ge=1)
    # Hashing runs in a process pool so it neither blocks the event loop nor holds the GIL.
    hash_workers: int = Field(0, ge=0, description="0 means one per CPU core")
    # Back-pressure: at most this many seconds of hashing wait in the queue (counted from how long
    # the workers took per hash at start-up); a request beyond that answers 9009 without hashing.
    hash_queue_seconds: float = Field(3.0, gt=0)
    # Processes serving the registration (and confirmation-web) port together, SO_REUSEPORT, each
    # with its share of the hashing workers: one per core lets a bigger machine use all of them.
    web_processes: int = Field(1, ge=1, le=64)
    # Proxies (CIDRs, comma-separated) whose X-Forwarded-For names the client; any other peer is the
    # client itself, whatever it sends.
    trusted_proxies: str = ""

    resend_cooldown_seconds: int = Field(60, ge=0)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    webhook_timeout_seconds: float = Field(5.0, gt=0)

    # Limits of every render of an email (its three parts together) or a page, operators' templates
    # and the shipped ones alike. A template that breaks one is refused by `userreg template set`;
    # at send time its email is dead-lettered, and confirmation-web serves the shipped page instead.
    # Wall-clock seconds a render may take (the mailer and confirmation-web render in their event
    # loop, which waits that long at most; the shipped templates take well under a millisecond).
    template_render_seconds: float = Field(1.0, gt=0, le=60)
    # Bytes (UTF-8) a render may produce; no value a template builds may be longer either. The
    # shipped templates produce a few KiB.
    template_output_bytes: int = Field(512 * 1024, ge=16 * 1024, le=64 * 1024 * 1024)

    outbox_batch_size: int = Field(200, ge=1)
    outbox_poll_seconds: float = Field(2.0, gt=0)

    log_level: str = "INFO"
    # "text" (one line per record) or "json" (one object per line): `shared/logs.py`.
    log_format: Literal["text", "json"] = "text"

    # The messages of the two URLs' checks never quote the URL: it may hold a password.
    @field_validator("database_url", "database_direct_url")
    @classmethod
    def _database_url_is_asyncpg(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            driver = make_url(value.get_secret_value()).drivername
        except (ArgumentError, ValueError):
            driver = None
        if driver != "postgresql+asyncpg":
            raise ValueError(
                "must be a PostgreSQL URL for the asyncpg driver, e.g. postgresql+asyncpg://user@host:5432/userreg"
            )
        return value

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url_is_amqp(cls, value: SecretStr) -> SecretStr:
        try:
            parts = urlsplit(value.get_secret_value())
            valid = parts.scheme in ("amqp", "amqps") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is no number
            valid = False
        if not valid:
            raise ValueError("must be a RabbitMQ URL, e.g. amqp://user@host:5672/")
        return value

    @field_validator("public_confirmation_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("console_service_urls")
    @classmethod
    def _service_urls_are_named_base_urls(cls, value: str) -> str:
        return ",".join(f"{name}={url}" for name, url in parse_service_urls(value).items())

    @field_validator("mailer_retry_delays")
    @classmethod
    def _delays_are_positive_seconds(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError("must be comma-separated seconds, e.g. 5,30,300") from None
        if not delays or any(not 0 < delay <= 86400 * 7 for delay in delays):
            raise ValueError("needs at least one delay, each > 0 s and at most 7 days")
        return ",".join(f"{delay:g}" for delay in delays)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        try:
            networks = [ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()]
        except ValueError as error:
            raise ValueError(f"must be comma-separated CIDRs, e.g. 10.0.0.0/8,::1/128 ({error})") from None
        return ",".join(str(network) for network in networks)

    @model_validator(mode="after")
    def _server_cancels_before_the_client_gives_up(self) -> Settings:
        # A client-side timeout abandons the connection (it may be mid-protocol); the server's
        # statement timeout cancels just the statement. The server's must come first.
        command, statement = self.database_command_timeout, self.database_statement_timeout
        if command and (not statement or command <= statement):
            raise ValueError(
                "DATABASE_COMMAND_TIMEOUT must be longer than DATABASE_STATEMENT_TIMEOUT (and 0 when that is 0)"
            )
        return self

    @property
    def database_dead_connection_seconds(self) -> int:
        """How long TCP keeps a database connection that stopped answering: the keepalive probes'
        time, also used as TCP_USER_TIMEOUT for data that stays unacknowledged."""
        return (
            self.database_tcp_keepalives_idle
            + self.database_tcp_keepalives_interval * self.database_tcp_keepalives_count
        )

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(part) for part in self.trusted_proxies.split(",") if part)

    @property
    def console_service_url_overrides(self) -> dict[str, str]:
        """CONSOLE_SERVICE_URLS as service name → base URL (no trailing slash)."""
        return parse_service_urls(self.console_service_urls)

    @property
    def mailer_retry_delay_seconds(self) -> tuple[float, ...]:
        return tuple(float(part) for part in self.mailer_retry_delays.split(","))

    @property
    def database_dsn(self) -> str:
        return self.database_url.get_secret_value()

    @property
    def database_session_dsn(self) -> str:
        """Where a connection that needs a session of its own goes (LISTEN, migrations)."""
        return (self.database_direct_url or self.database_url).get_secret_value()

    @property
    def amqp_dsn(self) -> str:
        return self.amqp_url.get_secret_value()

    def describe(self) -> dict[str, object]:
        """Every setting, with secrets masked: safe to print or log."""
        shown: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                value = mask_url(raw) if "://" in raw else "***"
            shown[name] = value
        return shown
