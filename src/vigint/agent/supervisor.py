"""Runs every camera of one agent: a reader thread, an uplink and a backfill per camera, the spool, the live
view, signals."""

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Sequence

from rich.console import Console
from rich.live import Live

from vigint.agent import status as view
from vigint.agent.backfill import Backfill
from vigint.agent.backoff import Backoff
from vigint.agent.settings import AgentSettings, Camera, redact
from vigint.agent.sources import SourceError, SourceFinished, SourceReader
from vigint.agent.spool import Spool
from vigint.agent.standing import KeyStanding
from vigint.agent.status import CameraStatus, State
from vigint.agent.uplink import Uplink
from vigint.tasks import wait_for_event

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 60.0  # status lines when not on a terminal
READER_EXIT_SECONDS = 2.0  # a reader thread notices its stop flag at its next frame


async def _read_in_thread(reader: SourceReader) -> None:
    """Run `reader.read()` in a daemon thread (a camera blocked in a read must not hold up the exit)."""
    loop = asyncio.get_running_loop()
    finished = loop.create_future()

    def target() -> None:
        try:
            reader.read()
        except BaseException as error:  # noqa: BLE001 - handed over to the event loop as it is
            _post(loop, _settle, finished, error)
        else:
            _post(loop, _settle, finished, None)

    threading.Thread(target=target, name=f"camera-{reader.camera.name}", daemon=True).start()
    await finished


def _post(loop: asyncio.AbstractEventLoop, callback, *args) -> None:
    """Run `callback` on the event loop from a reader thread; nothing if the loop is already gone (exit)."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        pass


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


async def run_camera(camera: Camera, settings: AgentSettings, status: CameraStatus, stopping: asyncio.Event,
                     spool: Spool, standing: KeyStanding | None = None,
                     orphans: Sequence[CameraStatus] = ()) -> None:
    """Read and stream one camera until its file ends or the agent stops; reopen a failing source.

    Beside its live uplink, the camera's backfill sends what the spool holds while the live stream is up, and
    so does one for each of `orphans`, cameras no longer configured whose footage is still spooled. `standing`
    is the key's, shared by every camera of the agent (a camera run alone has its own).

    Raises:
        Refused: from the uplink or a backfill, when the server refuses the hello or a key it never welcomed.
    """
    standing = standing or key_standing(settings, stopping)
    uplink = Uplink(camera, settings, status, stopping, spool, standing)
    backfills = {asyncio.create_task(Backfill(uplink, other).run()) for other in (status, *orphans)}
    try:
        await _stream_camera(camera, settings, status, stopping, uplink, backfills)
    finally:
        for backfill in backfills:
            backfill.cancel()
        await asyncio.gather(*backfills, return_exceptions=True)


async def _stream_camera(camera: Camera, settings: AgentSettings, status: CameraStatus,
                         stopping: asyncio.Event, uplink: Uplink, backfills: set[asyncio.Task]) -> None:
    """The live side of `run_camera`: reader and uplink, reopened after a source error."""
    loop = asyncio.get_running_loop()
    backoff = Backoff()
    while not stopping.is_set():
        reader = SourceReader(camera, settings, lambda packet: _post(loop, uplink.push, packet))
        source_done = asyncio.Event()
        sending = asyncio.create_task(uplink.run(source_done))
        reading = asyncio.create_task(_read_in_thread(reader))
        backoff.connected(time.monotonic())
        stop_waiter = asyncio.create_task(stopping.wait())
        await asyncio.wait({reading, sending, stop_waiter, *backfills}, return_when=asyncio.FIRST_COMPLETED)
        stop_waiter.cancel()
        reader.stopping.set()
        source_done.set()
        uplink.wake()
        refused = next((task for task in (sending, *backfills) if task.done() and task.exception()), None)
        if refused:
            await asyncio.wait({reading, sending}, timeout=READER_EXIT_SECONDS)
            raise refused.exception()  # the supervisor stops everything
        await sending
        await asyncio.wait({reading}, timeout=READER_EXIT_SECONDS)
        if not reading.done():
            return  # a reader blocked in a read: its daemon thread ends with the process
        try:
            reading.result()
        except SourceFinished:
            status.state = State.FINISHED
            status.detail = ""
            return
        except SourceError as error:
            status.state = State.SOURCE_DOWN
            status.detail = str(error)
            delay = backoff.next_delay(time.monotonic())
            log.warning("camera %s: %s; trying again in %.0f s", camera.name, error, delay)
            await wait_for_event(stopping, delay)


def open_spool(settings: AgentSettings) -> Spool:
    """Open the spool every camera of this agent shares (its cap is for all of them together)."""
    return Spool(settings.spool_dir, settings.spool_max_mb * 1_000_000)


def key_standing(settings: AgentSettings, stopping: asyncio.Event) -> KeyStanding:
    """The key's standing with the server, remembered in the spool's folder."""
    return KeyStanding(settings.spool_dir, settings.server_url, settings.api_key,
                       settings.refused_retry_seconds, stopping)


async def run_agent(settings: AgentSettings, console: Console) -> None:
    """Stream every camera until all files end, the agent is stopped (SIGINT/SIGTERM) or refused.

    Raises:
        Refused: the server refused the key or the hello (after every camera was stopped).
    """
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    spool = open_spool(settings)
    standing = key_standing(settings, stopping)
    statuses = [CameraStatus(camera.name, redact(camera.source)) for camera in settings.cameras]
    orphans = _orphans(settings, spool)
    cameras = [asyncio.create_task(run_camera(camera, settings, status, stopping, spool, standing,
                                              orphans if index == 0 else ()))
               for index, (camera, status) in enumerate(zip(settings.cameras, statuses))]
    display = asyncio.create_task(_show(statuses + orphans, settings, console, spool))
    try:
        pending = set(cameras)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failed = [task for task in done if task.exception()]
            if failed:
                stopping.set()
                await asyncio.gather(*pending, return_exceptions=True)
                raise failed[0].exception()
    finally:
        for status in statuses:
            if status.state is not State.FINISHED:
                status.state = State.STOPPED
        display.cancel()
        await asyncio.gather(display, return_exceptions=True)
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


def _orphans(settings: AgentSettings, spool: Spool) -> list[CameraStatus]:
    """The status of each camera no longer configured whose footage is still spooled: the first configured
    camera's connection sends it under its own name (the customer's footage all the same), then it is gone."""
    configured = {camera.name for camera in settings.cameras}
    orphans = [CameraStatus(name, "", state=State.UNCONFIGURED)
               for name in spool.cameras() if name not in configured]
    for orphan in orphans:
        log.info("camera %s is no longer configured: its recorded footage is sent under its name "
                 "beside camera %s", orphan.name, settings.cameras[0].name)
    return orphans


async def _show(statuses: list[CameraStatus], settings: AgentSettings, console: Console,
                spool: Spool) -> None:
    """Keep the live view up to date on a terminal; elsewhere, log state changes and a periodic summary."""
    server = redact(settings.server_url)
    if console.is_terminal:
        with Live(view.table(statuses, server), console=console, refresh_per_second=2) as live:
            while True:
                await asyncio.sleep(0.5)
                _refresh(statuses, spool)
                live.update(view.table(statuses, server))
    shown: dict[str, tuple] = {}
    summary_at = time.monotonic()
    while True:
        _refresh(statuses, spool)
        for status in statuses:
            seen = (status.state, status.detail, status.backfill, status.key_expires_at)
            if shown.get(status.name) != seen:
                shown[status.name] = seen
                log.info("%s", status.line())
        if time.monotonic() - summary_at >= LOG_EVERY_SECONDS:
            summary_at = time.monotonic()
            for status in statuses:
                log.info("%s", status.line())
        await asyncio.sleep(1.0)


def _refresh(statuses: list[CameraStatus], spool: Spool) -> None:
    """Copy each camera's spool counters into its status (a camera's write may evict another's GOPs)."""
    for status in statuses:
        status.spool = spool.stats(status.name)
