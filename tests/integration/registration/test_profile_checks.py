"""`POST /users/verifypassowrd` (the SDK's spelling: true or false for the signed-in user, counted by
the rate limit) and `GET /users/userclassprops` (the app's Users schema) through the real service."""

from __future__ import annotations

# --- verifypassowrd ----------------------------------------------------------------------------


async def test_verify_password_answers_valid_true_or_false(api_for, unique_email):
    api = await api_for()
    me = await api.signed_in(unique_email(), password="right-one")
    assert await api.verify_password("right-one", token=me["user-token"]) == (200, {"valid": True})
    assert await api.verify_password("wrong-one", token=me["user-token"]) == (200, {"valid": False})
    assert await api.verify_password("r" * 5000, token=me["user-token"]) == (200, {"valid": False})
    _, guest = await api.guest()
    assert await api.verify_password("anything", token=guest["user-token"]) == (200, {"valid": False})
    assert (await api.verify_password("right-one"))[1]["code"] == 3064
    for bad in ("", None, 5):
        status, body = await api.verify_password(bad, token=me["user-token"])
        assert (status, body["code"]) == (400, 3006)
    status, body = await api.call(
        "POST", "/users/verifypassowrd", data="password=x", headers={"user-token": me["user-token"]}
    )
    assert (status, body["code"]) == (415, 9005)


async def test_verify_password_is_counted_by_the_rate_limit(api_for, unique_email):
    api = await api_for(client_rate_limit="3/60s")
    email = unique_email()
    assert (await api.register({"email": email, "password": "pw"}))[0] == 200
    status, me = await api.login(email, "pw")
    assert status == 200
    assert await api.verify_password("pw", token=me["user-token"]) == (200, {"valid": True})  # the third
    status, body = await api.verify_password("pw", token=me["user-token"])
    assert (status, body["code"]) == (429, 9008)


# --- userclassprops ----------------------------------------------------------------------------


async def test_userclassprops_describes_the_users_schema(api_for, unique_email):
    api = await api_for()
    await api.signed_in(unique_email(), age=3)
    status, columns = await api.user_class_props()
    assert status == 200
    by_name = {column["name"]: column for column in columns}
    assert set(by_name) == {"age", "blUserLocale", "email", "name", "password"}
    assert by_name["email"] == {
        "name": "email",
        "type": "STRING",
        "required": True,
        "identity": True,
        "defaultValue": None,
        "dataSize": 500,
    }
    assert by_name["age"]["type"] == "INT" and by_name["age"]["identity"] is False
    assert by_name["name"]["required"] is False
    status, body = await api.user_class_props(key="0A1B2C3D-0000-4000-8000-00000000ABCD")
    assert (status, body["code"]) == (401, 2002)
