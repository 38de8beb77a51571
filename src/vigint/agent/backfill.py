"""One camera's backfill: its spooled footage, sent on a second connection while its live stream keeps up.

See docs/protocol.md, 4a. The connection is opened only while the camera streams live and its spool
holds GOPs; GOPs go oldest first, with their capture times, one at a time while the live queue holds at
most one GOP (live video goes first), each send awaited (the server slows us down by not reading). The
server's cumulative acks delete GOPs from the spool; what is unacked when a connection drops is sent
again, oldest first, on the next one.
"""

import asyncio
import logging
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedOK

from vigint import protocol
from vigint.agent.backoff import Backoff
from vigint.agent.status import CameraStatus, duration
from vigint.agent.uplink import AGENT, KeyRefused, Uplink, greet, run_connection, run_until_stopped
from vigint.protocol import CloseCode
from vigint.tasks import wait_for_event
from vigint.words import plural

log = logging.getLogger(__name__)


class Backfill:
    """Sends the spooled GOPs of the camera `status` names, beside the live `uplink`; `run` lasts as long as
    it.

    The uplink's live queue and its `changed` event (set whenever the queue, the link or the spool changes)
    say when a backfill may open and when it may send its next GOP. The camera is the uplink's own, or one no
    longer configured whose spool is left: still the customer's footage, sent under its own name.
    """

    def __init__(self, uplink: Uplink, status: CameraStatus):
        self.name = status.name
        self._uplink = uplink
        self.status = status
        self._settings = uplink.settings
        self._stopping = uplink.stopping
        self._spool = uplink.spool
        self._live = uplink.queue
        self._changed = uplink.changed
        self._backoff = Backoff()
        self._acked = False  # the current connection's server acknowledged something

    async def run(self) -> None:
        """Backfill whenever the live stream is up, its key accepted, with footage spooled, until the agent
        stops.

        Raises:
            Refused: the server refused the hello, or a key it never welcomed (the whole agent stops).
        """
        while await self._until(self._due):
            self._acked = False
            try:
                delay, detail = await run_connection(self._settings, self._backoff, self._session)
            except KeyRefused as error:
                # The live stream hears it too, and tries again later.
                self._uplink.standing.refuse(error, self._uplink.status.key_expires_at)
                continue
            if delay is None and not self._acked:
                delay = self._backoff.next_delay(time.monotonic())
                detail = "the server acknowledged nothing"
            if delay is None:
                self.status.backfill = ""
                continue  # everything sent was acknowledged; a new outage may have spooled more meanwhile
            self.status.backfill = f"recovery paused ({detail}), retrying in {delay:.0f} s"
            log.info("camera %s: backfill interrupted (%s); retrying in %.1f s", self.name, detail, delay)
            await wait_for_event(self._stopping, delay)

    def _due(self) -> bool:
        return (self._live.streaming and not self._uplink.standing.refused
                and self._spool.stats(self.name).gops > 0)

    async def _until(self, condition: Callable[[], bool]) -> bool:
        """Wait until `condition()` holds (True) or the agent stops (False)."""
        while not self._stopping.is_set():
            if condition():
                return True
            self._changed.clear()
            changed = asyncio.create_task(self._changed.wait())
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({changed, stopping}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            stopping.cancel()
        return False

    async def _session(self, connection: ClientConnection) -> None:
        name = self.name
        await greet(connection, protocol.hello(self._settings.api_key, name, AGENT, backfill=True))
        self._backoff.connected(time.monotonic())
        stats = self._spool.stats(name)
        self.status.backfill = f"recovering {duration(stats.seconds)} of footage"
        log.info("camera %s: backfill started: %s of recorded footage (%s)", name, duration(stats.seconds),
                 plural(stats.gops, "GOP"))
        await run_until_stopped(connection, self._stopping, self._send(connection), self._receive(connection))

    async def _send(self, connection: ClientConnection) -> None:
        """Send every spooled GOP, oldest first, while live video keeps up; then the end, and wait for the
        close."""
        name = self.name
        sent_through = None
        while await self._until(lambda: self._live.streaming and self._live.waiting_gops <= 1):
            gop = self._spool.next_gop(name, sent_through)
            if gop is None:
                await connection.send(protocol.end_of_backfill())
                # The receiver ends the session: at the server's 1000 after its last ack, or on an error.
                await asyncio.get_running_loop().create_future()
            for packet in self._spool.read(name, gop) or []:  # None: damaged, already deleted and counted
                await connection.send(protocol.media(packet.pts, packet.dts, packet.data))
            sent_through = gop.first_dts
            self.status.backfill = f"recovering {duration(self._spool.stats(name).seconds)} of footage"

    async def _receive(self, connection: ClientConnection) -> None:
        """Delete what the server acknowledges; return when it closes with 1000 (all footage analysed)."""
        while True:
            try:
                message = await connection.recv()
            except ConnectionClosedOK as closed:
                if closed.rcvd and closed.rcvd.code == CloseCode.DONE:
                    log.info("camera %s: backfill complete: the server has analysed the recorded footage",
                             self.name)
                    return
                raise
            if (until := protocol.parse_ack(message)) is not None:
                self._acked |= self._spool.acknowledge(self.name, until) > 0
