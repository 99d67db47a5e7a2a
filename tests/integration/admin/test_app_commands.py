"""`userreg app create|list|show|set` against the real database."""

from __future__ import annotations

import re

from tests.integration.admin.conftest import unique_name

GUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


def test_create_prints_the_keys_and_the_settings(userreg):
    name = unique_name()
    outcome = userreg("app", "create", "--name", name, "--email-confirmation")
    assert outcome.code == 0, outcome.err
    app = outcome.json
    assert GUID.match(app["appId"]) and GUID.match(app["restApiKey"]) and GUID.match(app["serverApiKey"])
    assert app["restApiKey"] != app["serverApiKey"]
    assert app == {
        **app,
        "name": name,
        "emailConfirmationRequired": True,
        "registrationEnabled": True,
        "dynamicSchema": True,
        "identityProperty": "email",
        "confirmationLinkTtl": 86400,
        "welcomeEmailEnabled": False,
        "confirmOnGet": False,
        "beforeRegisterWebhookUrl": None,
    }


def test_without_the_flag_no_confirmation_is_required(new_app):
    assert new_app()["emailConfirmationRequired"] is False


def test_names_are_unique(userreg, new_app):
    app = new_app()
    outcome = userreg("app", "create", "--name", app["name"])
    assert outcome.code == 1
    assert app["appId"] in outcome.err and "exists already" in outcome.err


def test_list_and_show_never_print_the_server_key(userreg, new_app):
    app = new_app()
    listed = userreg("app", "list")
    assert listed.code == 0
    entry = next(item for item in listed.json if item["appId"] == app["appId"])
    assert entry["serverApiKey"] == "***" and entry["users"] == 0
    assert app["serverApiKey"] not in listed.out

    for ref in (app["appId"], app["appId"].lower(), app["name"]):
        shown = userreg("app", "show", ref)
        assert shown.code == 0, shown.err
        assert shown.json["appId"] == app["appId"] and shown.json["serverApiKey"] == "***"
        assert shown.json["restApiKey"] == app["restApiKey"]

    revealed = userreg("app", "show", app["name"], "--show-server-key")
    assert revealed.json["serverApiKey"] == app["serverApiKey"]


def test_set_changes_typed_settings(userreg, new_app):
    app = new_app()
    outcome = userreg(
        "app",
        "set",
        app["appId"],
        "registrationEnabled=off",
        "confirmationLinkTtl=600",
        "welcomeEmailEnabled=true",
        "beforeRegisterWebhookUrl=http://127.0.0.1:9/hook",
    )
    assert outcome.code == 0, outcome.err
    assert outcome.json["registrationEnabled"] is False
    assert outcome.json["confirmationLinkTtl"] == 600
    assert outcome.json["welcomeEmailEnabled"] is True
    shown = userreg("app", "show", app["appId"]).json
    assert shown["beforeRegisterWebhookUrl"] == "http://127.0.0.1:9/hook"
    assert userreg("app", "set", app["appId"], "beforeRegisterWebhookUrl=null").json["beforeRegisterWebhookUrl"] is None


def test_the_abuse_limits_are_settings(userreg, new_app):
    app = new_app()
    assert (app["clientRateLimit"], app["maxDynamicColumns"], app["mailboxDailyEmailLimit"], app["guestTtl"]) == (
        "60/60s",
        100,
        10,
        30 * 86400,
    )
    outcome = userreg(
        "app",
        "set",
        app["appId"],
        "clientRateLimit=off",
        "maxDynamicColumns=5",
        "mailboxDailyEmailLimit=3",
        "guestTtl=3600",
    )
    assert outcome.code == 0, outcome.err
    assert (outcome.json["clientRateLimit"], outcome.json["maxDynamicColumns"]) == ("off", 5)
    assert userreg("app", "set", app["appId"], "clientRateLimit=1000/1h").json["clientRateLimit"] == "1000/3600s"
    assert userreg("app", "set", app["appId"], "clientRateLimit=lots").code == 2


def test_one_bad_value_changes_nothing(userreg, new_app):
    app = new_app()
    outcome = userreg("app", "set", app["appId"], "registrationEnabled=false", "confirmationLinkTtl=soon")
    assert outcome.code == 2
    assert "confirmationLinkTtl must be a whole number" in outcome.err
    assert userreg("app", "show", app["appId"]).json["registrationEnabled"] is True


def test_bad_arguments_exit_2_and_unknown_apps_exit_1(userreg, new_app):
    app = new_app()
    unknown_setting = userreg("app", "set", app["appId"], "colour=blue")
    assert unknown_setting.code == 2 and "unknown setting 'colour'" in unknown_setting.err
    not_an_assignment = userreg("app", "set", app["appId"], "registrationEnabled")
    assert not_an_assignment.code == 2 and "NAME=VALUE" in not_an_assignment.err
    missing = userreg("app", "show", unique_name("missing"))
    assert missing.code == 1 and "no app with appId or name" in missing.err
    assert userreg("app", "create").code == 2  # --name is required (argparse)
    for outcome in (unknown_setting, not_an_assignment, missing):
        assert "Traceback" not in outcome.err and outcome.out == ""


def test_renaming_keeps_names_unique(userreg, new_app):
    first, second = new_app(), new_app()
    clash = userreg("app", "set", first["appId"], f"name={second['name']}")
    assert clash.code == 1 and "exists already" in clash.err
    renamed = unique_name()
    assert userreg("app", "set", first["appId"], f"name={renamed}").json["name"] == renamed
    assert userreg("app", "show", renamed).json["appId"] == first["appId"]


def test_setting_the_identity_property_checks_the_schema(userreg, new_app):
    app = new_app()
    missing = userreg("app", "set", app["appId"], "identityProperty=nickname")
    assert missing.code == 1 and "no column 'nickname'" in missing.err
    assert userreg("schema", "add", app["appId"], "nickname", "--type", "STRING").code == 0
    assert userreg("app", "set", app["appId"], "identityProperty=nickname").json["identityProperty"] == "nickname"
    columns = {column["name"]: column for column in userreg("schema", "list", app["appId"]).json}
    assert columns["nickname"]["identity"] is True and columns["email"]["identity"] is False
