"""Byte ranges (RFC 9110 section 14) of a stored object, pure: a phone's video player asks for the first
bytes, then the parts it plays, and Safari plays nothing from a server that answers a range with the whole
file.

Clips and stills in a local folder are answered by aiohttp's FileResponse, which does the same from the file;
this decides what to send of an object in object storage, knowing only its size and entity tag, so that only
the bytes asked for are read from the bucket.
"""

import http
import re
from collections.abc import Mapping
from dataclasses import dataclass

# One range of bytes, at most 19 digits a bound (no int() of a 5,000-digit value); several ranges are ignored.
BYTE_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class Unsatisfiable(Exception):
    """The range asked for starts past the end of the body (416)."""


def byte_range(header: str | None, size: int) -> range | None:
    """Return the bytes a `Range` header asks of a `size`-byte body, or None for the whole body (no header, or
    one this server ignores: several ranges, other units, last before first).

    Raises:
        Unsatisfiable: the range starts at or past the end, or asks for the last 0 bytes.
    """
    match = BYTE_RANGE.fullmatch(header.strip()) if header else None
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:  # the last N bytes
        if int(match[2]) == 0:
            raise Unsatisfiable
        return range(max(0, size - int(match[2])), size)
    first = int(match[1])
    last = int(match[2]) if match[2] else None
    if last is not None and last < first:
        return None
    if first >= size:
        raise Unsatisfiable
    return range(first, size if last is None else min(last + 1, size))


@dataclass(frozen=True)
class Answer:
    """What to answer a GET of a stored object: the status, its headers, and the bytes of the object to send
    (empty for 304 and 416)."""

    status: http.HTTPStatus
    headers: dict[str, str]
    part: range


def answer_for(request: Mapping[str, str], size: int, etag: str) -> Answer:
    """Decide the answer to a GET of a `size`-byte object tagged `etag` (quoted) with the `request` headers:
    whole (200), a byte range of it (206), 304 when the client holds it already (`If-None-Match`), 416 for a
    range past its end. `If-Range` naming another version asks for it whole."""
    headers = {"Accept-Ranges": "bytes", "ETag": etag}
    if request.get("If-None-Match") in (etag, "*"):
        return Answer(http.HTTPStatus.NOT_MODIFIED, headers, range(0))
    wanted = request.get("Range") if request.get("If-Range", etag) == etag else None
    try:
        part = byte_range(wanted, size)
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return Answer(http.HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, headers, range(0))
    if part is None:
        return Answer(http.HTTPStatus.OK, {**headers, "Content-Length": str(size)}, range(size))
    headers["Content-Range"] = f"bytes {part.start}-{part.stop - 1}/{size}"
    headers["Content-Length"] = str(len(part))
    return Answer(http.HTTPStatus.PARTIAL_CONTENT, headers, part)
