"""`userreg schema set`: a column's "required", max length and (STRING ↔ TEXT) type, with the
console's checks, applied by the registration's rules and audited."""

from __future__ import annotations


def column(userreg, app_id: str, name: str) -> dict:
    return {column["name"]: column for column in userreg("schema", "list", app_id).json}[name]


def test_set_changes_required_and_max_length_and_registration_follows(userreg, create_user, new_app):
    app_id = new_app()["appId"]
    assert userreg("schema", "add", app_id, "nickname", "--type", "STRING").code == 0

    changed = userreg("schema", "set", app_id, "NICKNAME", "--required", "--max-length", "5")
    assert changed.code == 0, changed.err
    assert changed.json == {
        "name": "nickname",
        "type": "STRING",
        "required": True,
        "maxLength": 5,
        "identity": False,
        "builtIn": False,
    }
    assert column(userreg, app_id, "nickname") == changed.json
    missing = create_user(app_id, "email=a@example.com")
    assert missing.code == 2 and "3012" in missing.err
    too_long = create_user(app_id, "email=a@example.com", "nickname=abcdef")
    assert too_long.code == 2 and "8000" in too_long.err
    assert create_user(app_id, "email=a@example.com", "nickname=abc").code == 0

    # What is not given stays as it is.
    optional = userreg("schema", "set", app_id, "nickname", "--optional").json
    assert (optional["required"], optional["maxLength"]) == (False, 5)
    assert create_user(app_id, "email=b@example.com").code == 0

    entries = [entry for entry in userreg("audit", "list", "--app", app_id).json if entry["action"] == "schema.change"]
    assert len(entries) == 2 and all(entry["actor"].startswith("cli:") for entry in entries)
    newest = entries[0]["details"]
    assert newest["column"] == "nickname"
    assert newest["before"]["required"] is True and newest["after"] == optional


def test_a_string_column_becomes_text_and_back(userreg, new_app):
    app_id = new_app()["appId"]
    assert userreg("schema", "add", app_id, "bio", "--type", "STRING", "--max-length", "40").code == 0
    text = userreg("schema", "set", app_id, "bio", "--type", "text").json
    assert (text["type"], text["maxLength"]) == ("TEXT", None)  # a TEXT's default: unlimited
    string = userreg("schema", "set", app_id, "bio", "--type", "STRING").json
    assert (string["type"], string["maxLength"]) == ("STRING", 500)
    limited = userreg("schema", "set", app_id, "bio", "--type", "TEXT", "--max-length", "9000").json
    assert (limited["type"], limited["maxLength"]) == ("TEXT", 9000)


def test_bad_changes_are_refused_and_change_nothing(userreg, new_app):
    app_id = new_app()["appId"]
    assert userreg("schema", "add", app_id, "age", "--type", "INT").code == 0
    assert userreg("schema", "add", app_id, "tag", "--type", "STRING").code == 0
    before = userreg("schema", "list", app_id).json
    cases = [
        (("tag",), 2, "give what changes"),
        (("tag", "--required", "--optional"), 2, "not allowed with"),
        (("tag", "--max-length", "0"), 2, "--max-length must be between"),
        (("age", "--max-length", "5"), 2, "--max-length applies to STRING and TEXT"),
        (("age", "--type", "STRING"), 1, "cannot become STRING"),
        (("tag", "--type", "INT"), 1, "cannot become INT"),
        (("email", "--type", "TEXT"), 1, "built-in"),
        (("password", "--optional"), 1, "password column"),
        (("nothing", "--required"), 1, "has no column 'nothing'"),
        (("tag", "--type", "UUID"), 2, "invalid choice"),
    ]
    for argv, code, message in cases:
        outcome = userreg("schema", "set", app_id, *argv)
        assert (outcome.code, message in outcome.err, outcome.out) == (code, True, ""), (argv, outcome.err)
        assert "Traceback" not in outcome.err
    assert userreg("schema", "set", "no such app", "tag", "--required").code == 1
    assert userreg("schema", "list", app_id).json == before


def test_the_identity_column_keeps_its_type(userreg, new_app):
    app_id = new_app()["appId"]
    assert userreg("schema", "add", app_id, "nick", "--type", "STRING").code == 0
    assert userreg("schema", "set-identity", app_id, "nick").code == 0
    refused = userreg("schema", "set", app_id, "nick", "--type", "TEXT")
    assert refused.code == 1 and "identity" in refused.err
    assert userreg("schema", "set", app_id, "nick", "--max-length", "80").json["maxLength"] == 80
