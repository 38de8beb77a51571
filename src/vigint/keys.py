"""API keys: generation, format, checksum and hashing. Pure functions, no I/O.

A key is ``vig_`` + 43 base62 characters of randomness (43 * log2(62) = 256.03 bits) + 6 base62
characters encoding the CRC32 of those 43 characters. The checksum lets the agent and the server reject
a mistyped key without a database look-up, and lets secret scanners recognise a leaked key. Only the
SHA-256 of the whole key is stored; the plaintext exists only in the output of the command that made it.

A key handed over by a one-time link (`vigint key create --handover`) is not drawn but derived: from the
link's random token and a random seal that the database keeps until the link is used or dies (`derive`). The
link alone or the database alone tells nothing about the key, and once the seal is erased the link is only a
dead token.
"""

import hashlib
import hmac
import math
import secrets
import string
import zlib

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
PREFIX = "vig_"
RANDOM_LENGTH = 43
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
DISPLAY_LENGTH = len(PREFIX) + 6
SEAL_BYTES = 32  # the database's half of a handed-over key: as strong as the link's 256-bit token
_DERIVATION = b"vigint api key\x00"  # so that no other HMAC of the same token could ever equal a key
_ALPHABET_SET = frozenset(ALPHABET)


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def checksum(random_part: str) -> str:
    """Return the 6-character base62 CRC32 checksum of a key's random part."""
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    """Return a new API key with 256 bits of randomness from the OS's secure generator."""
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PREFIX + random_part + checksum(random_part)


def derive(token: str, seal: bytes) -> str:
    """Return the API key that a hand-over link's `token` and its `seal` make: HMAC-SHA256(token, seal), its
    256 bits as the 43 base62 characters of a key (62**43 > 2**256), with the usual checksum."""
    digest = hmac.new(token.encode("utf-8"), _DERIVATION + seal, hashlib.sha256).digest()
    random_part = _base62(int.from_bytes(digest, "big"), RANDOM_LENGTH)
    return PREFIX + random_part + checksum(random_part)


def new_seal() -> bytes:
    """Return a new random seal for a handed-over key (see `derive`)."""
    return secrets.token_bytes(SEAL_BYTES)


def is_well_formed(key: str) -> bool:
    """Tell whether `key` has the right prefix, length, alphabet and checksum (no database needed)."""
    if not isinstance(key, str) or len(key) != KEY_LENGTH or not key.startswith(PREFIX):
        return False
    body = key[len(PREFIX):]
    if not _ALPHABET_SET.issuperset(body):
        return False
    random_part = body[:RANDOM_LENGTH]
    check = body[RANDOM_LENGTH:]
    return secrets.compare_digest(checksum(random_part), check)


def hash_key(key: str) -> str:
    """Return the hex SHA-256 of the whole key: what the database stores and looks keys up by."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """Return the part of a key that may be shown and stored in clear: ``vig_`` + 6 characters."""
    return key[:DISPLAY_LENGTH]


def expires_in(expires_at: float, now: float) -> str:
    """How soon a key stops working, for people: "expires in 6 days", "expires in 5 h", "expires in 3 min",
    "expired". Rounded down (but minutes up): nobody is told they have more time than they have."""
    left = expires_at - now
    if left <= 0:
        return "expired"
    if left >= 2 * 86_400:
        return f"expires in {math.floor(left / 86_400)} days"
    if left >= 3600:
        return f"expires in {math.floor(left / 3600)} h"
    return f"expires in {math.ceil(left / 60)} min"
