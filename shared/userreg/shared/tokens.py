"""Random tokens (confirmation links, user-tokens, API keys) and the digests they are stored as."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

# 32 random bytes = 256 bits, URL-safe base64 without padding: 43 characters.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """The SHA-256 digest that is stored in place of the token (tokens have 256 bits of entropy,
    so a fast hash is enough: there is nothing to brute-force)."""
    return hashlib.sha256(token.encode()).digest()


def is_well_formed(token: str) -> bool:
    return TOKEN_PATTERN.fullmatch(token) is not None


def new_guid() -> str:
    """An uppercase GUID, the form Backendless uses for appIds and objectIds."""
    return str(uuid.uuid4()).upper()


def new_api_key() -> str:
    return new_guid()


def confirmation_url(public_base_url: str, app_id: str, token: str) -> str:
    """The link of docs/api.md, Confirmation pages, built from configuration only (never from a request's Host)."""
    return f"{public_base_url}/{app_id}/confirm/{token}"


def password_reset_url(public_base_url: str, app_id: str, token: str) -> str:
    """A password-reset link (docs/api.md, Sessions and password recovery), built from configuration only,
    like a confirmation link."""
    return f"{public_base_url}/{app_id}/reset-password/{token}"
