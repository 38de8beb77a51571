"""Real H.264 for tests (the built-in test pattern, cached), and a minimal protocol-v1 sender."""

import json
import time
from functools import lru_cache

from websockets.asyncio.client import ClientConnection, connect

from vigint import protocol, testpattern
from vigint.testpattern import EncodedVideo

make_h264 = lru_cache(maxsize=None)(testpattern.encode)


async def open_stream(url: str, key: str, camera: str = "front-door", **extra) -> tuple[ClientConnection, dict]:
    """Connect, say hello, return the connection and the welcome (raises ConnectionClosed if refused)."""
    connection = await connect(url, max_size=None)
    await connection.send(json.dumps({"type": "hello", "version": 1, "key": key, "camera": camera,
                                      "codec": "h264", **extra}))
    return connection, json.loads(await connection.recv())


async def send_video(connection: ClientConnection, video: EncodedVideo, start_us: int | None = None) -> int:
    """Send every access unit as fast as the link allows; return the bytes sent."""
    start_us = int(time.time() * 1_000_000) if start_us is None else start_us
    sent = 0
    for pts, dts, _, data in video.units:
        message = protocol.media(start_us + pts, start_us + dts, data)
        await connection.send(message)
        sent += len(message)
    return sent
