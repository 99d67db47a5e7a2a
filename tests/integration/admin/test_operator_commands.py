"""`userreg operator create|list`: the console's operators, with their password read as no one else
sees it and stored as its argon2id hash."""

from __future__ import annotations

import asyncio
import getpass
import io
import sys
import uuid

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from userreg.shared.db.models import Operator

PASSWORD = "correct horse battery staple"


def unique_email() -> str:
    return f"operator-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def create_operator(userreg, monkeypatch):
    """`create_operator(EMAIL, password=…)`: `userreg operator create EMAIL --password-stdin`. Call it
    through `asyncio.to_thread` from an async test."""

    def create(email: str, password: str = PASSWORD):
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{password}\n"))
        return userreg("operator", "create", email, "--password-stdin")

    return create


async def stored(sessions, email: str) -> Operator | None:
    async with sessions() as session:
        return await session.scalar(select(Operator).where(Operator.email == email.lower()))


async def test_create_prints_the_operator_without_its_password_and_stores_an_argon2id_hash(create_operator, sessions):
    email = unique_email()
    outcome = await asyncio.to_thread(create_operator, email.upper())
    assert outcome.code == 0, outcome.err
    assert outcome.json == {"email": email, "created": outcome.json["created"], "lastSignIn": None}
    assert PASSWORD not in outcome.out + outcome.err and "argon2" not in outcome.out

    operator = await stored(sessions, email)
    assert operator is not None and operator.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(operator.password_hash, PASSWORD)


def test_an_existing_operator_exits_1_whatever_the_case_of_its_email(create_operator):
    email = unique_email()
    assert create_operator(email).code == 0
    again = create_operator(email.upper(), password="another long password")
    assert again.code == 1 and "exists already" in again.err and again.out == ""


@pytest.mark.parametrize("password, problem", [("too short", "at least 12"), ("x" * 1025, "at most 1024")])
async def test_a_password_the_console_would_refuse_is_refused(create_operator, sessions, password, problem):
    email = unique_email()
    outcome = await asyncio.to_thread(create_operator, email, password=password)
    assert outcome.code == 2 and problem in outcome.err and "Traceback" not in outcome.err
    assert await stored(sessions, email) is None


@pytest.mark.parametrize("email", ["nobody", "@example.com", "someone@", "two words@example.com"])
def test_an_address_without_the_shape_of_one_is_refused(create_operator, email):
    outcome = create_operator(email)
    assert outcome.code == 2 and "email" in outcome.err and outcome.out == ""


def test_admin_at_localhost_is_an_address(create_operator):
    # What `userreg run` makes its first operator: an operator is never sent an email.
    assert create_operator(f"admin-{uuid.uuid4().hex[:6]}@localhost").code == 0


def test_on_a_terminal_the_password_is_typed_twice_without_echo(userreg, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    typed = iter([PASSWORD, "something else entirely", PASSWORD, PASSWORD])
    prompts = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or next(typed))
    email = unique_email()
    differing = userreg("operator", "create", email)
    assert differing.code == 2 and "differ" in differing.err
    created = userreg("operator", "create", email)
    assert created.code == 0, created.err
    assert prompts == ["Password: ", "Password again: "] * 2


def test_without_a_terminal_the_password_must_come_with_password_stdin(userreg):
    outcome = userreg("operator", "create", unique_email())  # pytest's standard input is no terminal
    assert outcome.code == 2 and "--password-stdin" in outcome.err


def test_list_shows_email_created_and_last_sign_in_and_never_the_hash(userreg, create_operator):
    email = unique_email()
    assert create_operator(email).code == 0
    listed = userreg("operator", "list")
    assert listed.code == 0, listed.err
    ours = [operator for operator in listed.json if operator["email"] == email]
    assert len(ours) == 1 and set(ours[0]) == {"email", "created", "lastSignIn"}
    assert ours[0]["lastSignIn"] is None
    assert "$argon2" not in listed.out
    # Oldest first.
    created = [operator["created"] for operator in listed.json]
    assert created == sorted(created)


def test_create_records_who_made_the_operator(userreg, create_operator):
    email = unique_email()
    assert create_operator(email).code == 0
    entries = userreg("audit", "list", "--limit", "1000").json
    (entry,) = [
        entry for entry in entries if entry["action"] == "operator.create" and entry["details"].get("email") == email
    ]
    assert entry["actor"].startswith("cli:") and "@" in entry["actor"] and entry["appId"] is None
    assert entry["details"] == {"email": email}
