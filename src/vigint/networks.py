"""Trusted networks: the load balancers and proxies whose word about a client's address is taken.

Behind a balancer every connection comes from the balancer's address, so per-address limits would count
all customers as one. The balancer can say whose connection it is (PROXY protocol on the stream port,
X-Forwarded-For on the page port), but anyone can say the same: only the peers listed in a
`trusted_proxies` setting are believed, and the list is empty unless the operator fills it.

Each trusted proxy appends the address it was reached from to X-Forwarded-For, so that list is read from the
right: the first address that is not a trusted proxy is the requester, and whatever lies to its left was
written by the requester itself and is ignored.
"""

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# one subscriber gets a /64 (or more): a host picks any of its 2^64 addresses at will
IPV6_REQUESTER_PREFIX = 64


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse a list of addresses and networks separated by commas or spaces ("10.0.0.5, 10.1.0.0/16
    fd00::/8"); an empty text is no network.

    Raises:
        ValueError: an entry is neither an address nor a network (named in the message).
    """
    networks = []
    for entry in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is neither an IP address nor a network "
                             "(10.0.0.0/8, fd00::/8)") from None
    return tuple(networks)


def client_address(address: str) -> str:
    """Return an IP address as per-address limits should count it: an IPv4 address mapped into IPv6
    (::ffff:10.0.0.5, as a dual-stack socket reports it) as the IPv4 address; anything else as given."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = getattr(parsed, "ipv4_mapped", None)
    return str(mapped or parsed)


def is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    """Tell whether the IP address `address` lies in one of `networks` (False for a text that is no
    address)."""
    try:
        parsed = ipaddress.ip_address(client_address(address))
    except ValueError:
        return False
    return any(parsed in network for network in networks)


class Proxies:
    """The reverse proxies trusted to say whom they forward."""

    def __init__(self, trusted: str):
        """`trusted`: `[web] trusted_proxies` (checked when settings were read)."""
        self._networks = parse_networks(trusted)

    def trusts(self, address: str | None) -> bool:
        """Return whether `address` (a socket's peer) is a trusted proxy."""
        return address is not None and is_trusted(address.strip("[]"), self._networks)

    def requester(self, peer: str | None, forwarded_for: list[str]) -> str:
        """Return who sent a request that reached us from `peer` with these X-Forwarded-For headers (in
        order).

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
        return ipaddress.ip_address(client_address((text or "").strip("[]")))
    except ValueError:
        return None


def requester_key(address: str) -> str:
    """Return what limits per requester count under: the address, or its /64 for IPv6 (one subscriber's)."""
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_REQUESTER_PREFIX}", strict=False))
    return str(parsed) if parsed is not None else address
