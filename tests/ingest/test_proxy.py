"""PROXY protocol v2 (ingest/proxy.py): the parser against well-formed and hostile headers, and the real
server believing the header from a trusted balancer only, so that its per-address limits count the agents
behind it."""

import asyncio
import ipaddress
import json
import socket
import struct
import time

import pytest
from helpers import add_client, url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage

from vigint import keys
from vigint.cli.cert import write_self_signed
from vigint.errors import ConfigError
from vigint.ingest.proxy import MAX_PAYLOAD_BYTES, SIGNATURE, MalformedProxyHeader, parse
from vigint.networks import is_trusted, parse_networks


def header(source: str, port: int = 40000, *, tlvs: bytes = b"", version_command: int = 0x21,
           transport: int = 0x1, length: int | None = None) -> bytes:
    """A header as HAProxy's send-proxy-v2 makes it, for a TCP connection from `source` to the node."""
    client = ipaddress.ip_address(source)
    node = ipaddress.ip_address("10.0.0.11" if client.version == 4 else "fd00::11")
    payload = client.packed + node.packed + struct.pack("!HH", port, 5002) + tlvs
    family = 0x1 if client.version == 4 else 0x2
    return SIGNATURE + struct.pack("!BBH", version_command, family << 4 | transport,
                                   len(payload) if length is None else length) + payload


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


def test_the_client_of_a_tcp_connection_is_read_with_what_follows_it():
    tlvs = tlv(0x01, b"http/1.1") + tlv(0x05, b"unique")
    parsed = parse(header("203.0.113.7", tlvs=tlvs) + b"GET / HTTP/1.1")
    assert (parsed.source, parsed.rest) == ("203.0.113.7", b"GET / HTTP/1.1")


def test_ipv6_clients_are_read_and_ipv4_mapped_ones_count_as_ipv4():
    assert parse(header("2001:db8::7")).source == "2001:db8::7"
    assert parse(header("::ffff:203.0.113.7")).source == "203.0.113.7"


def test_a_header_arriving_a_byte_at_a_time_is_awaited_until_whole():
    whole = header("203.0.113.7", tlvs=tlv(0x01, b"h2"))
    assert all(parse(whole[:end]) is None for end in range(len(whole)))
    assert parse(whole).source == "203.0.113.7"


def test_a_local_command_names_no_client_the_balancer_speaks_for_itself():
    # A health check: its address block, whatever it holds, is to be ignored.
    local = parse(SIGNATURE + b"\x20\x00\x00\x00rest")
    assert parse(header("203.0.113.7", version_command=0x20) + b"rest") == local
    assert parse(SIGNATURE + b"\x20\x00\x00\x00").source is None


@pytest.mark.parametrize("hostile, why", [
    (b"GET /v1/stream HTTP/1.1\r\n", "no PROXY protocol v2 signature"),
    (b"PROXY TCP4 203.0.113.7 10.0.0.11 40000 5002\r\n", "no PROXY protocol v2 signature"),  # version 1: text
    (SIGNATURE[:5] + b"X", "no PROXY protocol v2 signature"),  # seen before the header is whole
    (header("203.0.113.7", version_command=0x11), "version 1, not 2"),
    (header("203.0.113.7", version_command=0x22), "unknown PROXY command 2"),
    (header("203.0.113.7", transport=0x2), "not a stream connection"),
    (SIGNATURE + b"\x21\x41\x00\x00", "unknown address family 4"),
    (header("203.0.113.7", length=8) + b"\x00" * 8, "the addresses are cut short"),
    (header("203.0.113.7", tlvs=b"\x01\x00"), "a TLV is cut short"),
    (header("203.0.113.7", tlvs=struct.pack("!BH", 0x05, 500) + b"x" * 10), "a TLV runs past the end"),
    (header("203.0.113.7", tlvs=tlv(0x05, b"x" * MAX_PAYLOAD_BYTES)), "over the limit of 1024"),
    (SIGNATURE + b"\x21\x11\xff\xff", "over the limit of 1024"),  # said before any of it is sent
])
def test_hostile_headers_are_malformed(hostile, why):
    with pytest.raises(MalformedProxyHeader) as refused:
        parse(hostile)
    assert why in str(refused.value)


def test_trusted_networks_are_addresses_or_networks_and_nothing_else():
    networks = parse_networks("10.0.0.5, 10.1.0.0/16  fd00::/8")
    addresses = ("10.0.0.5", "10.0.0.6", "10.1.9.9", "::ffff:10.0.0.5", "fd00::1")
    assert [is_trusted(a, networks) for a in addresses] == [True, False, True, True, True]
    assert parse_networks("") == () and not is_trusted("10.0.0.5", ())
    with pytest.raises(ValueError, match="'10.0.0.300' is neither an IP address nor a network"):
        parse_networks("10.0.0.1, 10.0.0.300")


# The real server. Loopback addresses stand for the balancer (127.0.0.1, trusted) and strangers (127.0.0.2).

async def open_through(server, header_bytes: bytes, source: str = "127.0.0.1", **options):
    """Open a WebSocket connection from `source` that starts with `header_bytes` (what a balancer sends)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((source, 0))
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", server.port))
    await loop.sock_sendall(sock, header_bytes)
    return await connect(url(server), sock=sock, open_timeout=5, **options)


async def refused_hellos(server, count: int, header_bytes: bytes = b"",
                         source: str = "127.0.0.1") -> list[int]:
    """Send `count` hellos with unknown keys; return the close codes they got."""
    codes = []
    for _ in range(count):
        connection = await open_through(server, header_bytes, source)
        await connection.send(json.dumps({"type": "hello", "version": 1, "key": keys.generate(),
                                          "camera": "door"}))
        with pytest.raises(ConnectionClosed) as closed:
            await connection.recv()
        codes.append(closed.value.rcvd.code)
    return codes


async def test_a_stranger_behind_the_balancer_is_banned_alone_and_the_agent_behind_it_is_not(start):
    server = await start(trusted_proxies="127.0.0.1", max_auth_failures=3)
    _, _, api_key = await add_client(server.store)
    assert await refused_hellos(server, 4, header("203.0.113.66")) == [4401, 4401, 4401, 4429]
    connection = await open_through(server, header("198.51.100.5"))
    await connection.send(json.dumps({"type": "hello", "version": 1, "key": keys.generate(),
                                      "camera": "door"}))
    with pytest.raises(ConnectionClosed) as closed:
        await connection.recv()
    assert closed.value.rcvd.code == 4401  # another agent's typo: its own count, not the stranger's ban
    assert [address for address, _ in server._hellos.blocked(time.time())] == ["203.0.113.66"]
    connection = await open_through(server, header("198.51.100.5"))
    await connection.send(json.dumps({"type": "hello", "version": 1, "key": api_key, "camera": "door"}))
    assert json.loads(await connection.recv())["type"] == "welcome"
    (stream,) = server.state.live()
    assert stream.address == "198.51.100.5"
    await connection.close()


async def test_a_header_from_an_untrusted_peer_or_a_malformed_one_closes_that_connection_only(start):
    server = await start(trusted_proxies="127.0.0.1", max_auth_failures=3)
    _, _, api_key = await add_client(server.store)
    # A stranger (not the balancer) claiming to be someone else: no WebSocket, and no one else is charged
    # for it.
    with pytest.raises((InvalidHandshake, InvalidMessage, ConnectionError, EOFError, TimeoutError)):
        await open_through(server, header("198.51.100.5"), source="127.0.0.2")
    for hostile in (b"GET / HTTP/1.1\r\n\r\n", header("198.51.100.5", version_command=0x11),
                    header("198.51.100.5", tlvs=struct.pack("!BH", 0x05, 500))):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(hostile)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, without an answer
        writer.close()
    connection = await open_through(server, header("198.51.100.5"))
    await connection.send(json.dumps({"type": "hello", "version": 1, "key": api_key, "camera": "door"}))
    assert json.loads(await connection.recv())["type"] == "welcome"
    await connection.close()


async def test_a_balancer_that_sends_no_header_in_time_is_closed(start):
    server = await start(trusted_proxies="127.0.0.1", auth_timeout_seconds=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(SIGNATURE[:6])
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_trusted_proxies_with_a_tls_pair_stops_the_server_with_a_clear_error(start, tmp_path):
    cert, key = write_self_signed("127.0.0.1", tmp_path / "tls")
    with pytest.raises(ConfigError, match="the load balancer ends TLS"):
        await start(trusted_proxies="10.0.0.2", tls_cert=cert, tls_key=key)
