"""Typed keys of what the confirmation-web `web.Application` holds (set by `app.create_app` and its
`cleanup_ctx` steps), so that views and middleware need not import the composition root."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.confirmation_web.email_changes import EmailChanges
from userreg.confirmation_web.pages import PageRenderer
from userreg.confirmation_web.password_resets import PasswordResets
from userreg.confirmation_web.repository import Repository
from userreg.confirmation_web.service import Confirmations
from userreg.shared.hashing import PasswordHashing
from userreg.shared.runtime.tasks import Supervised
from userreg.shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
PUBLIC_ORIGIN = web.AppKey("public_origin", str)  # the origin of PUBLIC_CONFIRMATION_URL, for POST checks
ENGINE = web.AppKey("engine", AsyncEngine)  # the sessions' engine; the outbox relay's too
READ_POOL = web.AppKey("read_pool", asyncpg.Pool)  # the link lookups' read-only asyncpg pool
REPOSITORY = web.AppKey("repository", Repository)
CONFIRMATIONS = web.AppKey("confirmations", Confirmations)  # the service of the confirmation pages
HASHING = web.AppKey("hashing", PasswordHashing)  # argon2id workers for the new password of a reset
PASSWORD_RESETS = web.AppKey("password_resets", PasswordResets)  # the service of the reset pages
EMAIL_CHANGES = web.AppKey("email_changes", EmailChanges)  # the service of the email-change pages
PAGES = web.AppKey("pages", PageRenderer)
RELAY = web.AppKey("outbox_relay", Supervised)  # the supervised OutboxRelay
