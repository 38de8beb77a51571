"""PROXY protocol version 2, pure: the binary header a load balancer (HAProxy's `send-proxy-v2`) puts before a
connection's first byte, naming the client it accepted that connection from.

Nodes behind a balancer see every agent at the balancer's address, so per-address limits (pending sockets,
failed hellos and their 4429) would count all customers as one: one stranger's wrong keys would block every
agent. The header restores the agent's address, and is believed only from `[server] trusted_proxies`
(connections.py). Specification: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt, section 2.2.
Anything that is not a well-formed header raises `MalformedProxyHeader`: the caller closes that connection
only.
"""

import ipaddress
import struct
from dataclasses import dataclass

from vigint.errors import VigintError
from vigint.networks import client_address

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_FIXED = struct.Struct("!12sBBH")  # signature, version and command, family and transport, length of the rest
_TLV = struct.Struct("!BH")  # type, length
# Addresses take 216 bytes at most (two UNIX paths); HAProxy adds a few TLVs (ALPN, authority, unique id, SSL
# details). A header is read before anything else of its connection: beyond this it is no balancer's.
MAX_PAYLOAD_BYTES = 1024

_LOCAL = 0x0
_PROXY = 0x1
_UNSPEC = 0x0
_INET = 0x1
_INET6 = 0x2
_UNIX = 0x3
_STREAM = 0x1
_ADDRESS_BYTES = {_UNSPEC: 0, _INET: 12, _INET6: 36, _UNIX: 216}


class MalformedProxyHeader(VigintError):
    """The bytes before a connection's first byte are not a PROXY protocol v2 header this server takes."""


@dataclass(frozen=True)
class ProxyHeader:
    """A parsed header: the client's address, and the connection's bytes that followed the header."""

    source: str | None  # None: the balancer speaks for itself (a health check) or names no IP client
    rest: bytes


def parse(buffer: bytes) -> ProxyHeader | None:
    """Parse the header at the start of `buffer`; return None while more bytes are needed.

    Raises:
        MalformedProxyHeader: the bytes are not a v2 header (a wrong signature is seen in its first byte), its
            version, command, family or transport is not one a TCP balancer sends, its length is over
            MAX_PAYLOAD_BYTES, its addresses are cut short, or a TLV runs past its end.
    """
    if not SIGNATURE.startswith(buffer[:len(SIGNATURE)]):
        raise MalformedProxyHeader("no PROXY protocol v2 signature")
    if len(buffer) < _FIXED.size:
        return None
    _, version_command, family_transport, length = _FIXED.unpack_from(buffer)
    if version_command >> 4 != 2:
        raise MalformedProxyHeader(f"PROXY protocol version {version_command >> 4}, not 2")
    command = version_command & 0xF
    if command not in (_LOCAL, _PROXY):
        raise MalformedProxyHeader(f"unknown PROXY command {command}")
    if length > MAX_PAYLOAD_BYTES:
        raise MalformedProxyHeader(f"a PROXY header of {length} bytes is over the limit of "
                                   f"{MAX_PAYLOAD_BYTES}")
    if len(buffer) < _FIXED.size + length:
        return None
    payload = buffer[_FIXED.size:_FIXED.size + length]
    rest = buffer[_FIXED.size + length:]
    if command == _LOCAL:  # the balancer's own connection (a health check): its block is to be ignored
        return ProxyHeader(None, rest)
    return ProxyHeader(_source(family_transport, payload), rest)


def _source(family_transport: int, payload: bytes) -> str | None:
    family = family_transport >> 4
    transport = family_transport & 0xF
    if family not in _ADDRESS_BYTES:
        raise MalformedProxyHeader(f"unknown address family {family}")
    if family != _UNSPEC and transport != _STREAM:
        raise MalformedProxyHeader("not a stream connection")
    size = _ADDRESS_BYTES[family]
    if len(payload) < size:
        raise MalformedProxyHeader("the addresses are cut short")
    _check_tlvs(payload[size:])
    if family == _INET:
        return str(ipaddress.IPv4Address(payload[:4]))
    if family == _INET6:
        return client_address(str(ipaddress.IPv6Address(payload[:16])))
    return None  # UNSPEC or a UNIX socket: no IP client to count


def _check_tlvs(block: bytes) -> None:
    """Walk the TLVs after the addresses (their contents are not used): each must end within the header."""
    offset = 0
    while offset < len(block):
        if len(block) - offset < _TLV.size:
            raise MalformedProxyHeader("a TLV is cut short")
        _, length = _TLV.unpack_from(block, offset)
        offset += _TLV.size + length
        if offset > len(block):
            raise MalformedProxyHeader("a TLV runs past the end of the header")

