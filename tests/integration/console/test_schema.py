"""The Users schema pages: the columns with type, required, max length and identity; adding a
column and changing one with the same checks as `userreg schema` (refusals shown next to their
field, nothing changed); making a column the identity re-keys the users; every change with its
audit entry; CSRF refused; names shown escaped."""

from __future__ import annotations

from sqlalchemy import select

from userreg.shared.apps import schema_of
from userreg.shared.db.models import App, AuditEntry, ColumnType, User, UserStatus
from userreg.shared.tokens import new_guid


async def columns_of(sessions, app_id: str):
    async with sessions() as session:
        return await schema_of(session, app_id)


async def actions_of(sessions, app_id: str) -> list[tuple[str, dict]]:
    async with sessions() as session:
        entries = await session.scalars(select(AuditEntry).where(AuditEntry.app_id == app_id).order_by(AuditEntry.id))
        return [(entry.action, entry.details) for entry in entries]


async def test_the_page_lists_the_columns(client, make_app):
    app = await make_app()
    page = await client.get(f"/apps/{app.app_id}/schema")
    assert page.status == 200 and 'data-page="schema"' in page.text
    for name in ("email", "name", "password", "blUserLocale"):
        assert f"<code>{name}</code>" in page.text
    assert '<span class="badge ok">Identity</span>' in page.text
    assert '<td class="num">500</td>' in page.text and '<td class="num">1024</td>' in page.text


async def test_adding_a_column(client, make_app, sessions, operator):
    app = await make_app()
    page = await client.post(
        f"/apps/{app.app_id}/schema", {"name": "nickname", "type": "STRING", "required": "on", "max_length": "30"}
    )
    assert page.status == 200 and page.url.endswith("/schema?notice=added")
    assert "The column was added." in page.text and "<code>nickname</code>" in page.text
    column = (await columns_of(sessions, app.app_id))["nickname"]
    assert (column.type, column.required, column.max_length, column.built_in) == (ColumnType.STRING, True, 30, False)
    await client.post(f"/apps/{app.app_id}/schema", {"name": "age", "type": "INT"})
    age = (await columns_of(sessions, app.app_id))["age"]
    assert (age.type, age.required, age.max_length) == (ColumnType.INT, False, None)
    [(action, details), _] = await actions_of(sessions, app.app_id)
    assert action == "schema.add" and details["column"]["name"] == "nickname"
    async with sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.app_id == app.app_id))
    assert entry.actor == f"operator:{operator.email}"


async def test_bad_columns_are_refused_next_to_their_field(client, make_app, sessions):
    app = await make_app()
    assert (await client.post(f"/apps/{app.app_id}/schema", {"name": "age", "type": "INT"})).status == 200
    cases = [
        ({"name": "AGE", "type": "INT"}, "has a column &#39;age&#39; already"),
        ({"name": "9lives", "type": "INT"}, "must start with a letter"),
        ({"name": "objectId", "type": "STRING"}, "system property"),
        ({"name": "count", "type": "INT", "max_length": "5"}, "Max length applies to STRING and TEXT"),
        ({"name": "tag", "type": "STRING", "max_length": "0"}, "Max length must be between"),
        ({"name": "tag", "type": "STRING", "max_length": "many"}, "Max length must be a whole number"),
        ({"name": "tag", "type": "LIST"}, "Type must be one of"),
    ]
    for fields, message in cases:
        page = await client.post(f"/apps/{app.app_id}/schema", fields)
        assert page.status == 400 and message in page.text, (fields, page.text[-3000:])
        assert 'aria-invalid="true"' in page.text or 'role="alert"' in page.text
    assert set(await columns_of(sessions, app.app_id)) == {"email", "name", "password", "bluserlocale", "age"}


async def test_changing_a_column(client, make_app, sessions):
    app = await make_app()
    await client.post(f"/apps/{app.app_id}/schema", {"name": "nickname", "type": "STRING"})
    page = await client.get(f"/apps/{app.app_id}/schema/nickname")
    assert page.status == 200 and 'data-page="schema-column"' in page.text
    page = await client.post(f"/apps/{app.app_id}/schema/nickname", {"required": "on", "max_length": "40"})
    assert page.status == 200 and "The column was changed." in page.text
    column = (await columns_of(sessions, app.app_id))["nickname"]
    assert (column.required, column.max_length) == (True, 40)
    # An empty max length is the type's default; an unticked box is "not required".
    await client.post(f"/apps/{app.app_id}/schema/nickname", {"max_length": ""})
    column = (await columns_of(sessions, app.app_id))["nickname"]
    assert (column.required, column.max_length) == (False, 500)
    refused = await client.post(f"/apps/{app.app_id}/schema/nickname", {"max_length": "2000000"})
    assert refused.status == 400 and "Max length must be between 1 and 1000000" in refused.text
    password = await client.post(f"/apps/{app.app_id}/schema/password", {"max_length": "10"})
    assert password.status == 400 and "the registration&#39;s own" in password.text
    actions = [action for action, _ in await actions_of(sessions, app.app_id)]
    assert actions == ["schema.add", "schema.change", "schema.change"]
    assert (await client.get(f"/apps/{app.app_id}/schema/nothing")).status == 404


async def test_a_new_identity_rekeys_the_users_and_refuses_shared_values(client, make_app, sessions):
    app = await make_app()
    await client.post(f"/apps/{app.app_id}/schema", {"name": "handle", "type": "STRING"})
    ids = [new_guid(), new_guid()]
    async with sessions() as session, session.begin():
        for object_id, handle, email in zip(ids, ("Ann", "Bob"), ("a@example.com", "b@example.com"), strict=True):
            session.add(
                User(
                    object_id=object_id,
                    app_id=app.app_id,
                    identity_key=email,
                    properties={"email": email, "handle": handle},
                    status=UserStatus.ENABLED,
                )
            )
    page = await client.post(f"/apps/{app.app_id}/schema/handle/identity")
    assert page.status == 200 and "every user was re-keyed" in page.text
    async with sessions() as session:
        keys = dict(
            (await session.execute(select(User.object_id, User.identity_key).where(User.app_id == app.app_id))).all()
        )
        stored = await session.scalar(select(App).where(App.app_id == app.app_id))
    assert keys == {ids[0]: "ann", ids[1]: "bob"} and stored.identity_property == "handle"

    async with sessions() as session, session.begin():
        session.add(
            User(
                object_id=new_guid(),
                app_id=app.app_id,
                identity_key="carl",
                properties={"email": "a@example.com", "handle": "Carl"},
                status=UserStatus.ENABLED,
            )
        )
    refused = await client.post(f"/apps/{app.app_id}/schema/email/identity")
    assert refused.status == 400 and "share a value" in refused.text
    assert (await columns_of(sessions, app.app_id))["handle"].is_identity
    not_string = await client.post(f"/apps/{app.app_id}/schema/password/identity")
    assert not_string.status == 400 and "STRING column other than password" in not_string.text
    assert [action for action, _ in await actions_of(sessions, app.app_id)].count("schema.set-identity") == 1


async def test_a_form_without_its_csrf_token_is_refused(client, make_app, sessions):
    app = await make_app()
    page = await client.post(f"/apps/{app.app_id}/schema", {"name": "sneaky", "type": "STRING"}, csrf=False)
    assert page.status == 403
    cross_site = await client.post(
        f"/apps/{app.app_id}/schema/name", {"required": "on"}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status == 403
    columns = await columns_of(sessions, app.app_id)
    assert "sneaky" not in columns and not columns["name"].required


async def test_an_app_name_is_shown_escaped(client, make_app):
    app = await make_app("<script>alert(1)</script>")
    page = await client.get(f"/apps/{app.app_id}/schema")
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
