"""Trusted networks: the load balancers and proxies whose word about a client's address is taken.

Behind a balancer every connection comes from the balancer's address, so per-address limits would count
all customers as one. The balancer can say whose connection it is (PROXY protocol on the stream port,
X-Forwarded-For on the page port), but anyone can say the same: only the peers listed in a
`trusted_proxies` setting are believed, and the list is empty unless the operator fills it.
"""

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse a list of addresses and networks separated by commas or spaces ("10.0.0.5, 10.1.0.0/16 fd00::/8");
    an empty text is no network.

    Raises:
        ValueError: an entry is neither an address nor a network (named in the message).
    """
    networks = []
    for entry in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is neither an IP address nor a network (10.0.0.0/8, fd00::/8)") from None
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
    """Tell whether the IP address `address` lies in one of `networks` (False for a text that is no address)."""
    try:
        parsed = ipaddress.ip_address(client_address(address))
    except ValueError:
        return False
    return any(parsed in network for network in networks)
