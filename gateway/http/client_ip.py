"""The client's address behind the gateway's own proxies (`trusted_proxies` in the config).

The socket's peer is the client unless it is one of the trusted proxies. Then the
`X-Forwarded-For` chain is read from the right, skipping trusted hops: the first address a
trusted proxy did not add itself is the client. Addresses to the left of it were written by
the client and prove nothing, so they are never used. A malformed entry stops the walk at
the last trustworthy hop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """The config's CIDRs as networks; ValueError names the first bad one."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
             networks: Sequence[Network]) -> bool:
    return any(address in net for net in networks)


def client_ip(
    peer: str | None, forwarded_for: Sequence[str], networks: Sequence[Network]
) -> str | None:
    """The client's address given the socket's `peer` and the X-Forwarded-For headers."""
    if peer is None or not networks:
        return peer
    current = _address(peer)
    if current is None or not _trusted(current, networks):
        return peer
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, networks):
            break
    return str(current)
