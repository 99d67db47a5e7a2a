"""The sample data an operator's template is rendered with before it is stored (`userreg template
set`, the console's editor) and in the console's preview: what the services give that template,
filled with a sample user of the app (a value for every column of its schema), so that a template
that fails on real data is refused up front.

The variables themselves are the services' own: the mailer's (`mailer.operations.template_context`,
one event → an email's variables) and confirmation-web's (`confirmation_web.operations.
sample_contexts`, every way it shows a page). `shared` imports no service, so the caller passes
those two functions in as `ContextBuilders`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from userreg.shared.confirmations import SECRET_PROPERTIES, event_user, new_confirmation, user_event
from userreg.shared.db.models import App, ColumnType, SchemaColumn, User, UserStatus
from userreg.shared.email_changes import email_change_url
from userreg.shared.events import (
    USER_EMAIL_CHANGE_REQUESTED,
    USER_PASSWORD_CHANGED,
    USER_PASSWORD_RESET_REQUESTED,
    USER_REGISTERED,
    Event,
)
from userreg.shared.passwords import new_password_reset
from userreg.shared.settings import Settings
from userreg.shared.templates import Email, TemplateName
from userreg.shared.tokens import new_guid

# Sample values of the built-in columns; other columns get one of their type.
SAMPLE_PROPERTIES = {"email": "ann.example@example.com", "name": "Ann Example"}
# The address a sample email-change email confirms, and its link's token (no real one is issued).
SAMPLE_NEW_EMAIL = "ann.new@example.com"
SAMPLE_TOKEN = "sample-token-0123456789abcdefghijklmnopqrstuv"

SAMPLE_NUMBERS = {
    ColumnType.INT: 42,
    ColumnType.DOUBLE: 4.2,
    ColumnType.BOOLEAN: True,
    # Stored as epoch milliseconds, as Backendless returns dates.
    ColumnType.DATETIME: int(datetime(2030, 1, 31, 12, tzinfo=UTC).timestamp() * 1000),
}


@dataclass(frozen=True)
class ContextBuilders:
    """The services' functions that make a template's variables."""

    # mailer.operations.template_context: (event, *, app_name) → an email's variables.
    email_context: Callable[..., dict[str, Any]]
    # confirmation_web.operations.sample_contexts: (page name, *, app_id, …) → a page's variables,
    # one set for each way the page is shown.
    page_contexts: Callable[..., list[dict[str, Any]]]


def sample_value(column: SchemaColumn, locale: str) -> Any:
    if column.type in SAMPLE_NUMBERS:
        return SAMPLE_NUMBERS[column.type]
    if column.name == "blUserLocale":
        return locale
    text = SAMPLE_PROPERTIES.get(column.name, f"Sample {column.name}")
    return text[: column.max_length] if column.max_length else text


def sample_contexts_of(
    app: App,
    template: TemplateName,
    columns: Iterable[SchemaColumn],
    locale: str,
    settings: Settings,
    builders: ContextBuilders,
) -> list[dict[str, Any]]:
    """What the services give the template, filled with a sample user of the app: for an email the
    variables of docs/api.md, Emails for each event that sends it (the welcome email also without a
    confirmation link, as apps that do not confirm send it; the password-reset email with a sample
    reset link), for a page each way confirmation-web shows it."""
    properties = {
        column.name: sample_value(column, locale) for column in columns if column.name not in SECRET_PROPERTIES
    }
    if not isinstance(template, Email):
        return builders.page_contexts(
            template.value,
            app_id=app.app_id,
            app_name=app.name,
            identity_property=app.identity_property,
            properties=properties,
            link_ttl_seconds=app.confirmation_link_ttl,
            public_confirmation_url=settings.public_confirmation_url,
            locale=locale,
        )
    # A user that is never stored, so that the events are built exactly as the services build them.
    user = User(
        object_id=new_guid(), app_id=app.app_id, properties=properties, status=UserStatus.EMAIL_CONFIRMATION_PENDING
    )
    return [builders.email_context(event, app_name=app.name) for event in sample_events(app, template, user, settings)]


def sample_events(app: App, email: Email, user: User, settings: Settings) -> list[Event]:
    """The events that send `email`, as the services publish them for `user`."""
    if email is Email.PASSWORD_RESET:
        _, reset = new_password_reset(app, user, settings.public_confirmation_url)
        return [
            Event(
                type=USER_PASSWORD_RESET_REQUESTED, app_id=app.app_id, user=event_user(app, user), password_reset=reset
            )
        ]
    if email is Email.PASSWORD_CHANGED:
        return [user_event(USER_PASSWORD_CHANGED, app, user)]
    _, confirmation = new_confirmation(app, user, settings.public_confirmation_url)
    if email is Email.EMAIL_CHANGE:
        link = confirmation.model_copy(
            update={"url": email_change_url(settings.public_confirmation_url, app.app_id, SAMPLE_TOKEN)}
        )
        return [
            Event(
                type=USER_EMAIL_CHANGE_REQUESTED,
                app_id=app.app_id,
                user=event_user(app, user),
                confirmation=link,
                new_email=SAMPLE_NEW_EMAIL,
            )
        ]
    events = [user_event(USER_REGISTERED, app, user, confirmation)]
    if email is Email.REGISTRATION:
        events.append(user_event(USER_REGISTERED, app, user))
    return events
