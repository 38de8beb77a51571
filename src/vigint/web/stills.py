"""A camera's latest picture for its settings page, where the customer draws masks: its newest keyframe,
decoded.

The packets live in the stream's ring, on the ingest side that the page may not import: `serve`, which builds
both, hands the page a `Keyframes` that finds a stream's newest keyframe. Decoding one is a few milliseconds
of FFmpeg in a worker thread, so however many browsers look (or reload in a loop), each camera's picture is
decoded at most once per STILL_SECONDS: a small cache keyed by client and camera keeps the JPEG with its time,
and requests that come while a decode runs wait for that one. """

import asyncio
import time
from collections import OrderedDict
from typing import Protocol

from aiohttp import web

from vigint.incidents.stills import still_at
from vigint.media import Packet

# A still this recent is shown again: the masks are drawn on a scene, not on what moves in it this second.
STILL_SECONDS = 5.0
# Stills kept: one per camera being set up right now, on every client; the oldest go first.
MAX_STILLS = 256


class Keyframes(Protocol):
    """The newest keyframe of the streams this node receives."""

    async def keyframe(self, client_id: int, camera: str) -> Packet | None:
        """Return the newest keyframe (an access unit a decoder can start at) of the client's camera streaming
        to this node, or None if it streams to none or has sent no keyframe yet."""


class Stills:
    """Each camera's latest picture as a JPEG, decoded at most once per its `seconds`. Event loop only."""

    def __init__(self, keyframes: Keyframes, clock=time.monotonic, seconds: float = STILL_SECONDS):
        """`seconds`: how long a decoded picture is shown again (STILL_SECONDS for drawing masks on)."""
        self._keyframes = keyframes
        self._clock = clock
        self._seconds = seconds
        self._kept: OrderedDict[tuple[int, str], tuple[float, bytes | None]] = OrderedDict()
        self._running: dict[tuple[int, str], asyncio.Future] = {}
        self.decodes = 0  # how many were decoded, for the tests that count them

    async def still(self, client_id: int, camera: str) -> bytes | None:
        """Return a JPEG of the camera's newest keyframe, None if it is not streaming here or none decodes."""
        key = (client_id, camera)
        kept = self._kept.get(key)
        if kept is not None and self._clock() - kept[0] < self._seconds:
            return kept[1]
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(self._decode(key))
            self._running[key] = running
            running.add_done_callback(lambda _: self._running.pop(key, None))
        return await asyncio.shield(running)  # one viewer leaving does not cancel the others' decode

    async def _decode(self, key: tuple[int, str]) -> bytes | None:
        keyframe = await self._keyframes.keyframe(*key)
        if keyframe is None:  # not kept: names of cameras that do not exist would push the real ones out
            return None
        self.decodes += 1
        jpeg = await asyncio.to_thread(still_at, [keyframe], keyframe.dts)
        self._kept[key] = (self._clock(), jpeg)
        self._kept.move_to_end(key)
        while len(self._kept) > MAX_STILLS:
            self._kept.popitem(last=False)
        return jpeg


STILLS = web.AppKey("stills", Stills)
