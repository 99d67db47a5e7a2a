"""`userreg app create|list|show|set|rotate-keys|delete`: apps (tenants), their keys and settings
(docs/api.md, Apps), through the `shared.apps` functions the console uses too. Every change is written with
its audit entry in one transaction."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select

from userreg.admin.audit_log import record
from userreg.admin.commands.schema import make_identity
from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed, UsageError
from userreg.admin.lookup import count_users, find_app
from userreg.admin.values import parse_assignments, parse_setting
from userreg.shared.apps import SETTINGS, app_as_json, app_named, create_app, delete_app, rotate_keys, settings_of
from userreg.shared.db.models import App
from userreg.shared.settings import Settings, mask_url

HIDDEN = "***"


def shown(app: App, *, show_server_key: bool = False) -> dict[str, Any]:
    """The app as printed after it was created: the server key is a secret, so only `app create`
    (and `app show --show-server-key`, asked for explicitly) prints it."""
    data = app_as_json(app)
    if not show_server_key:
        data["serverApiKey"] = HIDDEN
    return data


async def create(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    name = parse_setting("name", args.name)
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        if existing := await app_named(session, name):
            raise CommandFailed(f"an app named {name!r} exists already (appId {existing.app_id})")
        app = await create_app(session, name, email_confirmation_required=args.email_confirmation)
        record(
            session, "app.create", app.app_id, name=app.name, emailConfirmationRequired=app.email_confirmation_required
        )
        return app_as_json(app)


async def list_apps(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    async with open_database(settings) as sessions, sessions() as session:
        apps = await session.scalars(select(App).order_by(App.created_at, App.name))
        return [{**shown(app), "users": await count_users(session, app.app_id)} for app in apps]


async def show(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        return {
            **shown(app, show_server_key=args.show_server_key),
            "created": app.created_at,
            "users": await count_users(session, app.app_id),
        }


async def set_settings(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    # Every value is checked before anything is written: a bad one changes nothing.
    changes = {name: parse_setting(name, raw) for name, raw in parse_assignments(args.settings).items()}
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        before = settings_of(app)
        renamed = "name" in changes and changes["name"] != app.name  # apps made before may share a name
        if renamed and (other := await app_named(session, changes["name"], other_than=app.app_id)):
            raise CommandFailed(f"an app named {changes['name']!r} exists already (appId {other.app_id})")
        for name, value in changes.items():
            if name == "identityProperty":
                await make_identity(session, app, value)
            else:
                setattr(app, SETTINGS[name], value)
        await session.flush()
        record_setting_changes(session, app, before)
        return shown(app)


def audited_value(name: str, value: Any) -> Any:
    """A setting's value as an audit entry keeps it: a webhook URL without a password in it."""
    return mask_url(value) if name == "beforeRegisterWebhookUrl" and isinstance(value, str) else value


def record_setting_changes(session, app: App, before: dict[str, Any]) -> None:
    """One "app.set" entry per setting whose value changed, with the old and the new value."""
    for name, value in settings_of(app).items():
        if value != before[name]:
            record(
                session,
                "app.set",
                app.app_id,
                setting=name,
                old=audited_value(name, before[name]),
                new=audited_value(name, value),
            )


async def rotate_app_keys(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        await rotate_keys(session, app)
        record(session, "app.rotate-keys", app.app_id, name=app.name)
        return {
            "appId": app.app_id,
            "name": app.name,
            "restApiKey": app.rest_api_key,
            "serverApiKey": app.server_api_key,
        }


async def remove_app(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        if args.confirm != app.name:
            raise UsageError(f"--confirm must repeat the app's name exactly ({app.name!r}); nothing deleted")
        users = await count_users(session, app.app_id)
        app_id, name = app.app_id, app.name
        await delete_app(session, app)
        record(session, "app.delete", app_id, name=name, users=users)
        return {"deleted": app_id, "name": name, "users": users}


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "app",
        help="create, list, show and configure apps",
        description="Apps (tenants): their keys and registration settings.",
    )
    sub = group.add_subparsers(dest="app_command", required=True, metavar="COMMAND")

    parser = sub.add_parser("create", help="create an app; prints its appId, keys and settings as JSON")
    parser.add_argument("--name", required=True, help="a name of its own, usable in place of the appId")
    parser.add_argument(
        "--email-confirmation",
        action="store_true",
        help="new users must confirm their email address before they can log in",
    )
    parser.set_defaults(handler=create)

    parser = sub.add_parser("list", help="every app with its settings and user count (JSON)")
    parser.set_defaults(handler=list_apps)

    parser = sub.add_parser("show", help="one app's settings (JSON)")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("--show-server-key", action="store_true", help="also print the secret server API key")
    parser.set_defaults(handler=show)

    parser = sub.add_parser(
        "set",
        help="change settings: userreg app set APP registrationEnabled=false …",
        description="Change an app's settings, given by their Backendless names: "
        + ", ".join(SETTINGS)
        + ". Booleans take true/false (yes/no, on/off, 1/0); confirmationLinkTtl and guestTtl are in "
        "seconds; clientRateLimit is REQUESTS/SECONDSs per client address (e.g. 60/60s) or off; "
        "beforeRegisterWebhookUrl=null removes the webhook.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("settings", nargs="+", metavar="NAME=VALUE")
    parser.set_defaults(handler=set_settings)

    parser = sub.add_parser(
        "rotate-keys",
        help="new REST and server API keys (printed once); the old ones stop working at once",
        description="Replace the app's REST and server API keys. The new keys are printed once, as JSON; "
        "clients with the old keys are refused from the next request on.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.set_defaults(handler=rotate_app_keys)

    parser = sub.add_parser(
        "delete",
        help="delete an app with its users, schema and templates: --confirm NAME",
        description="Delete the app and everything that is its own (users, their sessions and tokens, its "
        "schema and template overrides). Irreversible: --confirm must repeat the app's name.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("--confirm", required=True, metavar="NAME", help="the app's name, typed again")
    parser.set_defaults(handler=remove_app)
