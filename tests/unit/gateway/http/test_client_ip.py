"""Who the client is behind the gateway's own proxies: a table of chains."""

import pytest

from gateway.http.client_ip import client_ip, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "::1/128", "127.0.0.1/32"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # Not from a trusted proxy: the peer, whatever the header claims.
        ("203.0.113.9", ["1.2.3.4"], "203.0.113.9"),
        # From the proxy: the address it added.
        ("10.0.0.5", ["198.51.100.7"], "198.51.100.7"),
        # The client wrote its own entry first; only the proxy's entry counts.
        ("10.0.0.5", ["6.6.6.6, 198.51.100.7"], "198.51.100.7"),
        # Two trusted hops, then the client.
        ("10.0.0.5", ["198.51.100.7, 10.1.1.1"], "198.51.100.7"),
        # Several headers are one list, in order.
        ("10.0.0.5", ["198.51.100.7", "10.1.1.1"], "198.51.100.7"),
        # Only trusted hops: the leftmost of them.
        ("10.0.0.5", ["10.2.2.2, 10.1.1.1"], "10.2.2.2"),
        # No header: the proxy itself.
        ("10.0.0.5", [], "10.0.0.5"),
        # Garbage stops the walk at the last trustworthy hop.
        ("10.0.0.5", ["198.51.100.7, not-an-ip"], "10.0.0.5"),
        # Ports and IPv6 brackets, and IPv4-mapped peers.
        ("10.0.0.5", ["198.51.100.7:4711"], "198.51.100.7"),
        ("::1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("::ffff:10.0.0.5", ["198.51.100.7"], "198.51.100.7"),
        (None, ["198.51.100.7"], None),
    ],
)
def test_client_ip(peer: str | None, xff: list[str], expected: str | None) -> None:
    assert client_ip(peer, xff, PROXIES) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_ip("10.0.0.5", ["198.51.100.7"], ()) == "10.0.0.5"


def test_bad_cidr_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.0/33"])
