"""Mailboxes: the one form in which two spellings of an email address that reach the same inbox
are equal. Email identities are compared in it, and the mailbox limits (cool-down, daily cap)
count per mailbox in it, so `V@Bücher.DE` and `v@xn--bcher-kva.de` are one identity and one mailbox.
"""

from __future__ import annotations

import idna


def mailbox_key(address: str) -> str:
    """The address case-folded, its domain in IDNA (punycode) form. Text that is no address (no
    `@`, or a domain IDNA cannot encode) is only case-folded: it still compares case-insensitively."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address.casefold()
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        ascii_domain = domain
    return f"{local.casefold()}@{ascii_domain.casefold()}"
