"""Typed keys of what the mailer's `web.Application` holds (set in its `cleanup_ctx`)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.mailer.consumer import MailConsumer
from userreg.mailer.sending import Sender
from userreg.mailer.service import Deliverer
from userreg.shared.runtime.tasks import Supervised
from userreg.shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SENDER = web.AppKey("sender", Sender)  # the SMTP pool, or the fake a test gave `create_app`
DELIVERER = web.AppKey("deliverer", Deliverer)
CONSUMER = web.AppKey("consumer", MailConsumer)
CONSUMING = web.AppKey("consuming", Supervised)  # the consumer's lifecycle: running, or restarting
PRUNING = web.AppKey("pruning", Supervised)  # the retention task
