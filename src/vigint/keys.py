"""API keys: generation, format, checksum and hashing. Pure functions, no I/O.

A key is ``vig_`` + 43 base62 characters of randomness (43 * log2(62) = 256.03 bits) + 6 base62
characters encoding the CRC32 of those 43 characters. The checksum lets the agent and the server reject
a mistyped key without a database look-up, and lets secret scanners recognise a leaked key. Only the
SHA-256 of the whole key is stored; the plaintext exists only in the output of the command that made it.
"""

import hashlib
import secrets
import string
import zlib

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
PREFIX = "vig_"
RANDOM_LENGTH = 43
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
DISPLAY_LENGTH = len(PREFIX) + 6
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


def is_well_formed(key: str) -> bool:
    """Tell whether `key` has the right prefix, length, alphabet and checksum (no database needed)."""
    if not isinstance(key, str) or len(key) != KEY_LENGTH or not key.startswith(PREFIX):
        return False
    body = key[len(PREFIX):]
    if not _ALPHABET_SET.issuperset(body):
        return False
    random_part, check = body[:RANDOM_LENGTH], body[RANDOM_LENGTH:]
    return secrets.compare_digest(checksum(random_part), check)


def hash_key(key: str) -> str:
    """Return the hex SHA-256 of the whole key: what the database stores and looks keys up by."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """Return the part of a key that may be shown and stored in clear: ``vig_`` + 6 characters."""
    return key[:DISPLAY_LENGTH]
