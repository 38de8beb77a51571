"""Why a connection to the server failed, when the cause is a setting: TLS on one side only, or a certificate.

A wss:// URL for a server without TLS gets its handshake reset; a ws:// URL for a TLS server gets no HTTP
answer; either looks like a network fault, which the agent would retry for ever. A certificate made for
another name fails like any untrusted one. After such a failure, one more short connection tells the cases
apart (does the port answer plain HTTP, or a TLS handshake, and which names does its certificate hold?), so
that the agent can stop with a message naming the fix.
"""

import asyncio
import ssl
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from websockets.exceptions import InvalidMessage

from vigint import protocol

# The probe runs once per failed attempt; a server that answers at all does so within milliseconds.
PROBE_TIMEOUT_SECONDS = 5.0
# OpenSSL's verify codes for a certificate whose names do not include the URL's host (a name, an address).
NAME_MISMATCH_CODES = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# Codes that mean no trusted authority signed the certificate: what --ca-cert answers.
# self-signed, self-signed in chain, no local issuer, cannot verify the leaf
UNTRUSTED_CODES = {18, 19, 20, 21}
# How a TLS handshake at a plain server, or plain HTTP at a TLS server, fails (besides being refused
# outright).
MISMATCH_SIGNS = (ssl.SSLError, ConnectionResetError, ConnectionAbortedError, InvalidMessage)


def reason(error: BaseException) -> str:
    """Return a short text for a connection error that has no clearer explanation (never empty)."""
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


async def explain(server_url: str, ca_cert: Path | None, error: BaseException) -> str | None:
    """Return what is wrong with the agent's settings when a connection to `server_url` failed with `error`,
    naming the fix; None when retrying may help (the network, the server down)."""
    parts = urlsplit(server_url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    if isinstance(error, ssl.SSLCertVerificationError):
        return await _certificate_problem(parts, port, ca_cert, error)
    if not isinstance(error, MISMATCH_SIGNS):
        return None
    if secure and await _answers_plain_http(parts.hostname, port):
        return (f"the server at {_address(parts)} speaks plain ws://, not TLS: "
                f"use {_with_scheme(parts, 'ws')} or enable TLS on the server "
                "(vigint serve --tls-cert … --tls-key …)")
    if not secure and await _answers_tls(parts.hostname, port):
        return f"the server at {_address(parts)} speaks TLS: use {_with_scheme(parts, 'wss')}"
    return None


async def _certificate_problem(parts: SplitResult, port: int, ca_cert: Path | None,
                               error: ssl.SSLCertVerificationError) -> str:
    host = parts.hostname
    if error.verify_code in NAME_MISMATCH_CODES:
        names = await _certificate_names(host, port, ca_cert)
        if not names:
            return f"the server's TLS certificate is not valid for {host} ({error.verify_message})"
        usable = next((name for name in names if "*" not in name), None)
        instead = _with_scheme(parts, 'wss', usable) if usable else 'a host it names'
        return (f"the server's TLS certificate is for {', '.join(names)}, not {host} (the URL's host): use "
                f"{instead}, or a certificate made for {host} (vigint cert --host {host})")
    if error.verify_code not in UNTRUSTED_CODES:
        return (f"the server's TLS certificate is not valid ({error.verify_message}): "
                "tell your Vigint operator")
    if ca_cert is not None:
        return (f"the server's TLS certificate is not trusted ({error.verify_message}): "
                f"it was not made or signed by --ca-cert {ca_cert}; "
                "get the server's certificate again from your Vigint operator")
    return (f"the server's TLS certificate is not trusted ({error.verify_message}): "
            "pass --ca-cert with the server's certificate")


def _address(parts: SplitResult) -> str:
    return parts.netloc.rpartition("@")[2]  # never a user name or password someone put in the URL


def _with_scheme(parts: SplitResult, scheme: str, host: str | None = None) -> str:
    """Return the URL as the user would write it with another scheme (and host): no default stream path."""
    address = _address(parts)
    if host is not None:
        address = f"[{host}]" if ":" in host else host
        address += f":{parts.port}" if parts.port else ""
    path = "" if parts.path in ("", "/", protocol.PATH) else parts.path
    return f"{scheme}://{address}{path}"


async def _answers_plain_http(host: str, port: int) -> bool:
    """Whether `host:port` answers a plain HTTP request (GET /healthz, which every Vigint server answers)."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                return await reader.readexactly(5) == b"HTTP/"
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False


async def _answers_tls(host: str, port: int) -> bool:
    """Whether `host:port` completes a TLS handshake (whatever its certificate: nothing is sent over it)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return await _handshake(host, port, context) is not None


async def _certificate_names(host: str, port: int, ca_cert: Path | None) -> list[str]:
    """Return the names and addresses the server's certificate holds, verified as the agent verifies it but
    for the name; empty if that fails too."""
    context = ssl.create_default_context(cafile=ca_cert)
    context.check_hostname = False
    certificate = await _handshake(host, port, context) or {}
    names = [value for _, value in certificate.get("subjectAltName", ())]
    if names:
        return names
    subject = certificate.get("subject", ())
    return [value for rdn in subject for key, value in rdn if key == "commonName"]


async def _handshake(host: str, port: int, context: ssl.SSLContext) -> dict | None:
    """Complete a TLS handshake with `host:port` and return the peer's certificate as `getpeercert()` shows it
    ({} when not verified), or None when the handshake fails."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
            try:
                return writer.get_extra_info("peercert") or {}
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
