"""Byte ranges (RFC 9110 section 14) of a body held whole: a phone's video player asks for the first bytes, then
the parts it plays, and Safari plays nothing from a server that answers a range with the whole file.

Clips read from a local folder are answered by aiohttp's FileResponse, which does the same from the file; this
serves what is read whole (object storage, stills) on the page and the signed links of the stream port.
"""

import hashlib
import http
import re

from websockets.datastructures import Headers
from websockets.http11 import Response

# One range of bytes, at most 19 digits a bound (no int() of a 5,000-digit value); several ranges are ignored.
BYTE_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class Unsatisfiable(Exception):
    """The range asked for starts past the end of the body (416)."""


def byte_range(header: str | None, size: int) -> range | None:
    """Return the bytes a `Range` header asks of a `size`-byte body, or None for the whole body (no header, or one
    this server ignores: several ranges, other units, last before first).

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
    first, last = int(match[1]), int(match[2]) if match[2] else None
    if last is not None and last < first:
        return None
    if first >= size:
        raise Unsatisfiable
    return range(first, size if last is None else min(last + 1, size))


def answer_with_ranges(body: bytes, content_type: str, request: Headers) -> Response:
    """Answer a GET of `body`: whole (200), a byte range of it (206), 304 when the client holds it already
    (`If-None-Match`), 416 for a range past its end. `If-Range` with another version asks for it whole."""
    etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    headers = Headers([("Content-Type", content_type), ("Accept-Ranges", "bytes"), ("ETag", etag),
                       ("Cache-Control", "private, no-store")])
    if request.get("If-None-Match") in (etag, "*"):
        return Response(http.HTTPStatus.NOT_MODIFIED, "Not Modified", headers, b"")
    wanted = request.get("Range") if request.get("If-Range", etag) == etag else None
    try:
        part = byte_range(wanted, len(body))
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{len(body)}"
        return Response(http.HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "Range Not Satisfiable", headers, b"")
    if part is None:
        headers["Content-Length"] = str(len(body))
        return Response(http.HTTPStatus.OK, "OK", headers, body)
    headers["Content-Range"] = f"bytes {part.start}-{part.stop - 1}/{len(body)}"
    headers["Content-Length"] = str(len(part))
    return Response(http.HTTPStatus.PARTIAL_CONTENT, "Partial Content", headers, body[part.start:part.stop])
