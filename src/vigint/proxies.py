"""Who sent a request: its socket's address, or, behind a reverse proxy the operator trusts, the address that
proxy saw (X-Forwarded-For). Pure.

Behind a proxy every socket comes from the proxy, so limits per address would be limits on everyone at once; a
header anyone can send is believed only from `[web] trusted_proxies`. Each trusted proxy appends the address it
was reached from, so the list is read from the right: the first address that is not a trusted proxy is the
requester, and whatever lies to its left was written by the requester itself and is ignored.
"""

import ipaddress

IPV6_REQUESTER_PREFIX = 64  # one subscriber gets a /64 (or more): a host picks any of its 2^64 addresses at will


def proxy_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse `[web] trusted_proxies`: addresses or networks, comma-separated (empty: none). Raises ValueError."""
    networks = []
    for part in filter(None, (item.strip() for item in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or network (e.g. 10.0.0.2 or 10.0.0.0/24)") from None
    return tuple(networks)


class Proxies:
    """The reverse proxies trusted to say whom they forward."""

    def __init__(self, trusted: str):
        """`trusted`: `[web] trusted_proxies` (checked when settings were read)."""
        self._networks = proxy_networks(trusted)

    def trusts(self, address: str | None) -> bool:
        """Return whether `address` (a socket's peer) is a trusted proxy."""
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self._networks)

    def requester(self, peer: str | None, forwarded_for: list[str]) -> str:
        """Return who sent a request that reached us from `peer` with these X-Forwarded-For headers (in order).

        An unparsable entry where a proxy's should be ends the walk at the last trusted hop: a trusted proxy
        writes addresses, so nothing to its left is worth believing.
        """
        current = peer or "?"
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        while self.trusts(current) and hops:
            hop = hops.pop()
            if _address(hop) is None:
                break
            current = hop
        return current


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address((text or "").strip("[]"))
    except ValueError:
        return None
    return parsed.ipv4_mapped or parsed if isinstance(parsed, ipaddress.IPv6Address) else parsed


def requester_key(address: str) -> str:
    """Return what limits per requester count under: the address, or its /64 for IPv6 (one subscriber's)."""
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_REQUESTER_PREFIX}", strict=False))
    return str(parsed) if parsed is not None else address
