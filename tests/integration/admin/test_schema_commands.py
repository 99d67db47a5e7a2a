"""`userreg schema list|add|set-identity|remove`."""

from __future__ import annotations

import asyncio
import io
import sys

from sqlalchemy import select

from userreg.shared.db.models import User


def columns(userreg, app_id: str) -> dict[str, dict]:
    outcome = userreg("schema", "list", app_id)
    assert outcome.code == 0, outcome.err
    return {column["name"]: column for column in outcome.json}


def test_a_new_app_has_the_built_in_columns(userreg, new_app):
    schema = columns(userreg, new_app()["appId"])
    assert set(schema) == {"email", "name", "password", "blUserLocale"}
    assert schema["email"] == {
        "name": "email",
        "type": "STRING",
        "required": False,
        "maxLength": 500,
        "identity": True,
        "builtIn": True,
    }
    assert all(column["builtIn"] for column in schema.values())


def test_add_columns_of_every_type(userreg, new_app):
    app_id = new_app()["appId"]
    for name, type_ in (("age", "INT"), ("score", "double"), ("bio", "TEXT"), ("born", "DATETIME"), ("vip", "BOOLEAN")):
        assert userreg("schema", "add", app_id, name, "--type", type_).code == 0
    added = userreg("schema", "add", app_id, "nickname", "--type", "STRING", "--required", "--max-length", "30")
    assert added.json == {
        "name": "nickname",
        "type": "STRING",
        "required": True,
        "maxLength": 30,
        "identity": False,
        "builtIn": False,
    }
    schema = columns(userreg, app_id)
    assert schema["age"]["type"] == "INT" and schema["age"]["maxLength"] is None
    assert schema["score"]["type"] == "DOUBLE"
    assert schema["bio"]["maxLength"] is None
    assert userreg("schema", "add", app_id, "motto", "--type", "STRING").json["maxLength"] == 500


def test_bad_columns_are_refused(userreg, new_app):
    app_id = new_app()["appId"]
    assert userreg("schema", "add", app_id, "age", "--type", "INT").code == 0
    cases = [
        (("AGE", "--type", "INT"), 1, "has a column 'age' already"),
        (("email", "--type", "STRING"), 1, "has a column 'email' already"),
        (("9lives", "--type", "INT"), 2, "must start with a letter"),
        (("objectId", "--type", "STRING"), 2, "system property"),
        (("userStatus", "--type", "STRING"), 2, "system property"),
        (("count", "--type", "INT", "--max-length", "5"), 2, "--max-length applies to STRING and TEXT"),
        (("tag", "--type", "STRING", "--max-length", "0"), 2, "--max-length must be between"),
        (("tag", "--type", "UUID"), 2, "invalid choice"),
    ]
    for argv, code, message in cases:
        outcome = userreg("schema", "add", app_id, *argv)
        assert (outcome.code, message in outcome.err) == (code, True), (argv, outcome.err)


def test_built_in_and_identity_columns_cannot_be_removed(userreg, new_app):
    app_id = new_app()["appId"]
    for name in ("email", "password", "name", "blUserLocale"):
        outcome = userreg("schema", "remove", app_id, name)
        assert outcome.code == 1
    assert "built-in" in userreg("schema", "remove", app_id, "name").err
    assert userreg("schema", "add", app_id, "handle", "--type", "STRING").code == 0
    assert userreg("schema", "set-identity", app_id, "handle").code == 0
    identity = userreg("schema", "remove", app_id, "handle")
    assert identity.code == 1 and "identity column" in identity.err
    assert userreg("schema", "remove", app_id, "nothing").code == 1


def test_the_identity_must_be_a_string_column(userreg, new_app):
    app_id = new_app()["appId"]
    assert userreg("schema", "add", app_id, "age", "--type", "INT").code == 0
    assert "STRING column" in userreg("schema", "set-identity", app_id, "age").err
    assert "STRING column" in userreg("schema", "set-identity", app_id, "password").err
    assert columns(userreg, app_id)["email"]["identity"] is True


def pipe_passwords(monkeypatch, count: int) -> None:
    """Standard input for `count` commands of `user create --password-stdin`: a password a line."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("secret\n" * count))


async def test_removing_a_column_removes_its_values(auserreg, new_app, sessions, monkeypatch):
    app_id = (await asyncio.to_thread(new_app))["appId"]
    assert (await auserreg("schema", "add", app_id, "nickname", "--type", "STRING")).code == 0
    pipe_passwords(monkeypatch, 1)
    created = await auserreg("user", "create", app_id, "email=nick@example.com", "nickname=Nick", "--password-stdin")
    assert created.code == 0, created.err
    removed = await auserreg("schema", "remove", app_id, "nickname")
    assert removed.json == {"removed": "nickname", "usersChanged": 1}
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.object_id == created.json["objectId"]))
    assert "nickname" not in user.properties and user.properties["email"] == "nick@example.com"


async def test_a_new_identity_rekeys_the_users_and_refuses_shared_values(
    userreg, auserreg, new_app, sessions, monkeypatch
):
    app_id = (await asyncio.to_thread(new_app))["appId"]
    run = auserreg
    pipe_passwords(monkeypatch, 4)
    assert (await run("schema", "add", app_id, "handle", "--type", "STRING")).code == 0
    create = ("user", "create", app_id, "--password-stdin")
    first = (await run(*create, "email=a@example.com", "handle=Ärger")).json
    second = (await run(*create, "email=b@example.com", "handle=other")).json

    assert (await run("schema", "set-identity", app_id, "handle")).code == 0
    async with sessions() as session:
        keys = dict(
            (await session.execute(select(User.object_id, User.identity_key).where(User.app_id == app_id))).all()
        )
    assert keys == {first["objectId"]: "ärger", second["objectId"]: "other"}
    # The new identity is what makes a user unique now.
    duplicate = await run(*create, "email=c@example.com", "handle=ÄRGER")
    assert duplicate.code == 1 and "3033" in duplicate.err

    assert (await run(*create, "email=A@example.com", "handle=third")).code == 0
    back = await run("schema", "set-identity", app_id, "email")
    assert back.code == 1 and "share a value" in back.err
    async with sessions() as session:
        keys_after = dict(
            (
                await session.execute(
                    select(User.object_id, User.identity_key).where(User.app_id == app_id, User.object_id.in_(keys))
                )
            ).all()
        )
    assert keys_after == keys, "a refused change leaves the identity as it was"
    schema = await asyncio.to_thread(columns, userreg, app_id)
    assert schema["handle"]["identity"] is True
