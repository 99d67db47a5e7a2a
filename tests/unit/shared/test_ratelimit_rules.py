"""Rate limits as pure rules: limits as operators write them, client addresses behind proxies, and
when a client may send again."""

from __future__ import annotations

import ipaddress

import pytest

from userreg.shared.ratelimits import RateLimit, client_address, client_key, parse_rate_limit, retry_after

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("written", "limit"),
    [
        ("60/60s", RateLimit(60, 60)),
        (" 5 / 1m ", RateLimit(5, 60)),
        ("1000/1h", RateLimit(1000, 3600)),
        ("10/30", RateLimit(10, 30)),
        ("OFF", None),
    ],
)
def test_limits_as_operators_write_them(written, limit):
    assert parse_rate_limit(written) == limit


@pytest.mark.parametrize("written", ["", "60", "60/", "-1/60s", "0/60s", "10/0s", "10/2d", "10/25h", "lots"])
def test_malformed_limits_are_refused(written):
    with pytest.raises(ValueError):
        parse_rate_limit(written)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),  # an untrusted peer's header is ignored
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),  # a trusted proxy names the client
        ("10.0.0.2", ["192.0.2.9, 198.51.100.1, 10.0.0.3"], "198.51.100.1"),  # right-most untrusted hop
        ("10.0.0.2", ["192.0.2.9", "198.51.100.1"], "198.51.100.1"),  # several headers read as one list
        ("10.0.0.2", [], "10.0.0.2"),  # a proxy that forwarded nothing
        ("10.0.0.2", ["not-an-address"], "10.0.0.2"),  # garbage ends the walk
        ("::1", ["2001:db8::5"], "2001:db8::5"),
    ],
)
def test_the_client_is_the_peer_unless_a_trusted_proxy_forwarded(peer, forwarded, client):
    assert client_address(peer, forwarded, PROXIES) == client


def test_ipv6_clients_are_counted_per_64():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("192.0.2.1") == "192.0.2.1"


def test_within_the_limit_there_is_no_wait():
    assert retry_after(RateLimit(10, 60), current=10, previous=0, elapsed=5) is None


def test_over_the_limit_in_this_window_waits_for_the_next():
    assert retry_after(RateLimit(10, 60), current=11, previous=0, elapsed=15) == 45


def test_the_previous_window_counts_by_the_share_still_inside_the_last_period():
    limit = RateLimit(10, 60)
    # Half of the previous window is still inside the last 60 s: 5 of its 10 count.
    assert retry_after(limit, current=5, previous=10, elapsed=30) is None
    wait = retry_after(limit, current=6, previous=10, elapsed=30)
    # It fits again once no more than 4 of the previous 10 count: 24 s before the window's end.
    assert wait is not None and wait == pytest.approx(6.0)
