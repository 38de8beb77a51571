"""Whether the server accepts this agent's key, for all its cameras at once.

A key refused the first time it is tried is a typo or a wrong server: the agent stops (exit code 3) rather
than knock forever; so does a key refused past the expiry the server announced (rotated: its successor is
due). A key that worked and is refused later belongs to a client the operator revoked: the agent keeps its
cameras open but sends and spools nothing, and says hello again now and then (one camera's hello for the whole
agent, so that refused hellos stay far under the server's limit per address), so that `vigint client
reactivate` brings every camera back within a minute, with no visit to the site.

"Worked before" outlives the process: the last server and key that were welcomed are remembered in a file in
the spool folder (a hash only, never the key), so an agent restarted while its client is revoked (a reboot, a
power cut, an upgrade) still waits for the reactivation instead of stopping for good.
"""

import asyncio
import hashlib
import logging
import os
import random
import time
from pathlib import Path

from vigint import keys
from vigint.errors import VigintError

log = logging.getLogger(__name__)

REMEMBERED_FILE = ".welcomed-key"  # a leading dot: never a camera's folder (protocol.CAMERA_NAME)
# The server's clock and ours differ a little: a key refused this close to the expiry it was told has expired.
EXPIRY_MARGIN_SECONDS = 60.0
JITTER = 0.2  # each wait is the interval ± this share: a site's agents, restarted together, spread out


class KeyStanding:
    """The key's standing with the server, shared by every camera of one agent.

    Args:
        folder: where the welcomed key is remembered (the spool folder, private to the agent).
        server_url, api_key: what a welcome vouches for; the file holds a hash of both.
        retry_seconds: how often a refused key is tried again.
        stopping: set when the agent stops; ends every wait.
    """

    def __init__(self, folder: Path, server_url: str, api_key: str, retry_seconds: float,
                 stopping: asyncio.Event):
        self._path = folder / REMEMBERED_FILE
        self._retry_seconds = retry_seconds
        self._stopping = stopping
        self._prefix = keys.display_prefix(api_key)
        self._fingerprint = hashlib.sha256(f"{server_url}\n{api_key}".encode()).hexdigest()
        self._known = _read(self._path) == self._fingerprint
        self.refused = False
        self._accepted = asyncio.Event()
        self._next_try = 0.0

    @property
    def detail(self) -> str:
        """What a refused camera shows."""
        return f"retrying every {self._retry_seconds:.0f} s; ask your Vigint operator"

    def welcomed(self) -> None:
        """A hello was welcomed: the key works; remember it for later runs, and wake every refused camera."""
        if self.refused:
            log.info("the server accepts the API key %s… again: streaming", self._prefix)
        self.refused = False
        self._accepted.set()
        if not self._known:
            self._known = True
            _write(self._path, self._fingerprint)

    def refuse(self, error: VigintError, expires_at: float | None) -> None:
        """The server refused the key: carry on refused if it was welcomed before, else raise `error`.

        `expires_at` is when the server said the key stops working, if it said so: a key refused past it was
        replaced (`vigint key rotate`), and no reactivation brings it back.

        Raises:
            VigintError: `error`, when this server never welcomed this key, or it has expired (the agent
                stops).
        """
        if not self._known or (expires_at is not None and time.time() >= expires_at - EXPIRY_MARGIN_SECONDS):
            raise error
        if not self.refused:
            log.warning("key refused by the server (%s…: revoked or expired): %s", self._prefix, self.detail)
            self.refused = True
            self._next_try = time.monotonic() + self._interval()
            self._accepted.clear()

    async def turn(self) -> None:
        """While refused, wait until this camera may say hello again: at once when another camera's hello was
        welcomed, else when the agent's next try is due (taken by one camera; the others wait for the
        next)."""
        while self.refused and not self._stopping.is_set():
            wait = self._next_try - time.monotonic()
            if wait <= 0:
                self._next_try = time.monotonic() + self._interval()
                return
            waits = [asyncio.create_task(event.wait()) for event in (self._accepted, self._stopping)]
            await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()

    def _interval(self) -> float:
        return self._retry_seconds * random.uniform(1 - JITTER, 1 + JITTER)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        # never welcomed here (or unreadable: then a refused key stops the agent, as on a first start)
        return ""


def _write(path: Path, fingerprint: str) -> None:
    """Write the file whole or not at all (an agent killed mid-write must not leave half a hash)."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w") as file:
            file.write(fingerprint + "\n")
        os.replace(temporary, path)
    except OSError as error:
        log.warning("cannot write %s (%s): if the key is refused after a restart, the agent will stop "
                    "instead of waiting for the operator", path, error.strerror or error)
