"""Each open live stream watched as its customer's camera settings say: when it is armed, its sensitivity,
its masks.

The settings are written to the database by the customer's page, the operator's `vigint camera set` or an
alert's mute link: by other processes, maybe on other nodes. This node reads them for a client when a stream
of its opens, before its welcome (should that be slow or fail, the stream is watched as armed until they are
read), then every POLL_SECONDS looks for what changed since, in two queries for all its streams. A stream's
arming is decided again at the instant its state changes (`arming.state`'s `until`), on the clock the node was
given, and at once when its settings change; a change of sensitivity or masks reaches its running detector.

What the customer left unset is the operator's: the camera's `[camera CLIENT_ID/NAME]` section of
config.ini, else `[motion]` (docs/cameras.md, "The operator's defaults").
"""

import asyncio
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from vigint import arming
from vigint.analysis.motion import Tuning, rectangle_masks
from vigint.analysis.pipeline import StreamAnalysis
from vigint.config import Settings
from vigint.ingest.session import Session
from vigint.ingest.streams import Streams
from vigint.schedule import ALWAYS, Schedule
from vigint.store import CameraSetting, Store, is_busy

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0  # how soon a change made by another process reaches the open streams
# Changes are read again this far back: a write stamped a moment before it commits, or by a host whose clock
# is a little behind this one's, is still seen; what is read again and unchanged is left alone.
LOOKBACK_SECONDS = 30.0
# How long a new live stream's welcome may wait for its camera's settings (a read takes a millisecond or two).
SETTINGS_WAIT_SECONDS = 0.05


@dataclass(frozen=True)
class Watch:
    """How a stream is watched, from its settings at one instant."""

    armed: bool
    until: float | None  # Unix time at which `armed` next changes; None: never
    tuning: Tuning


def camera_tuning(settings: Settings, client_id: int, camera: str, setting: CameraSetting | None) -> Tuning:
    """Return a camera's sensitivity and masks: its customer's, else the operator's."""
    operator = settings.camera(client_id, camera)
    sensitivity = operator.sensitivity
    if setting is not None and setting.sensitivity is not None:
        sensitivity = setting.sensitivity
    masks = rectangle_masks(operator.masks)
    if setting is not None and setting.masks is not None:
        masks = setting.masks
    return Tuning(sensitivity, masks)


def decide(settings: Settings, client_id: int, camera: str, setting: CameraSetting | None, zone: tzinfo,
           now: float) -> Watch:
    """Return how a camera is watched at `now` (Unix time): armed or not by its schedule and mute in the
    client's `zone`, until when, with which tuning."""
    schedule = ALWAYS if setting is None else setting.schedule
    state = _state(schedule, zone, now, None if setting is None else setting.muted_until)
    until = None if state.until is None else state.until.timestamp()
    return Watch(state.armed, until, camera_tuning(settings, client_id, camera, setting))


# Cameras sharing a schedule and a zone (a shop's, a chain's) are decided at once when its edge comes: each
# decision takes a fraction of a millisecond on the event loop, so one is made for all of them.
@functools.lru_cache(maxsize=1024)
def _state(schedule: Schedule, zone: tzinfo, now: float, muted_until: float | None) -> arming.ArmingState:
    muted = None if muted_until is None else datetime.fromtimestamp(muted_until, UTC)
    return arming.state(schedule, zone, datetime.fromtimestamp(now, UTC), muted)


class RecordedArming:
    """Whether footage recorded at an instant was taken while its camera was armed: by its schedule then, and
    by a mute then in force. When a mute began is not kept: it is taken as the camera's last change (the mute
    itself, unless a later change of another setting followed it)."""

    def __init__(self, setting: CameraSetting | None, zone: tzinfo):
        self._schedule = ALWAYS if setting is None else setting.schedule
        self._zone = zone
        self._mute: tuple[float, float] | None = None  # [from, until)
        if setting is not None and setting.muted_until is not None:
            self._mute = (setting.updated_at, setting.muted_until)
        self._span = (math.inf, -math.inf, True)  # [from, until) in which the camera is armed or not

    def __call__(self, instant: float) -> bool:
        start, end, armed = self._span
        if not start <= instant < end:
            muted = self._mute is not None and self._mute[0] <= instant < self._mute[1]
            state = _state(self._schedule, self._zone, instant, self._mute[1] if muted else None)
            end = math.inf if state.until is None else state.until.timestamp()
            if self._mute is not None and instant < self._mute[0]:
                end = min(end, self._mute[0])
            armed = state.armed
            self._span = (instant, end, armed)
        return armed


class CameraWatch:
    """Applies camera settings to this node's live streams. Event loop only; `run` once, as a task."""

    def __init__(self, settings: Settings, store: Store, streams: Streams,
                 clock: Callable[[], float] = time.time):
        """`clock` tells the time (Unix seconds) that arming decisions are made at."""
        self._settings = settings
        self._store = store
        self._streams = streams
        self._clock = clock
        self._zones: dict[int, str | None] = {}  # clients with open streams: their zone (None: the server's)
        self._cameras: dict[tuple[int, str], CameraSetting] = {}  # their cameras that have settings
        self._stale: set[tuple[int, str]] = set()  # cameras whose settings changed since their decision
        self._watching: dict[Session, Watch] = {}  # each open live stream's decision
        self._due = asyncio.Event()  # a decision's `until` came
        self._timer: asyncio.TimerHandle | None = None
        self._looked_at: float | None = None  # changes last read (on this host's clock, as writers stamp)

    async def watch(self, session: Session) -> None:
        """Read a new live stream's settings (unless its client's are known) and follow them, before its media
        comes. The welcome waits for them at most SETTINGS_WAIT_SECONDS: a database locked elsewhere must not
        hold every new camera. Past that, or should the read fail, the stream is watched as armed until `run`
        has read them (an alert too many at worst, never footage unseen)."""
        if session.client_id not in self._zones:
            try:
                await asyncio.wait_for(self._read_client(session.client_id), SETTINGS_WAIT_SECONDS)
            except TimeoutError:
                session.analysis.arm()
                self._due.set()
                return
            except Exception as error:  # noqa: BLE001 - logged; `run` reads them on its next turn
                _log_failure(error)
                session.analysis.arm()
                return
        self._apply()

    def forget(self, session: Session) -> None:
        """A stream ended: let go of it now (its decoder and ring are megabytes), not at the next turn."""
        self._watching.pop(session, None)

    async def follow_recorded(self, session: Session) -> None:
        """Tell a backfill when its camera was armed while its footage was recorded. Should the database fail,
        all of it is watched: recorded footage is never lost to an error (an alert too many at worst)."""
        try:
            zone, settings = await self._store.watched_cameras(session.client_id)
        except Exception as error:  # noqa: BLE001 - logged; the footage is analysed in full
            log.warning("camera %s: could not read its settings (%s): "
                        "its recorded footage is watched in full", session.camera, error)
            return
        setting = next((found for found in settings if found.camera == session.camera), None)
        session.analysis.follow_recorded(RecordedArming(setting, arming.zone(zone)))

    async def run(self, stopping: asyncio.Event) -> None:
        """Watch until `stopping` is set."""
        next_look = time.monotonic() + POLL_SECONDS
        while not stopping.is_set():
            self._due.clear()
            try:
                await self._load_new()
                if time.monotonic() >= next_look:
                    next_look = time.monotonic() + POLL_SECONDS
                    await self._read_changes()
            except Exception as error:  # noqa: BLE001 - the next turn tries again; streams keep their state
                _log_failure(error)
            self._apply()
            await _first_of((self._due, stopping), max(0.0, next_look - time.monotonic()))
        if self._timer is not None:
            self._timer.cancel()

    async def _load_new(self) -> None:
        """Read the settings of each client whose first stream opened since the last turn; forget those of
        clients and streams no longer open here."""
        sessions = self._streams.live()
        for gone in set(self._watching) - set(sessions):
            del self._watching[gone]
        clients = {session.client_id for session in sessions}
        for client_id in set(self._zones) - clients:
            del self._zones[client_id]
        self._cameras = {key: setting for key, setting in self._cameras.items() if key[0] in clients}
        for client_id in clients - set(self._zones):
            await self._read_client(client_id)

    async def _read_client(self, client_id: int) -> None:
        zone, settings = await self._store.watched_cameras(client_id)
        self._zones[client_id] = zone
        self._cameras.update({(client_id, setting.camera): setting for setting in settings})

    async def _read_changes(self) -> None:
        """Take the settings written since the last look (and LOOKBACK_SECONDS before), of clients watched
        here."""
        now = time.time()
        since = (now if self._looked_at is None else self._looked_at) - LOOKBACK_SECONDS
        zones, settings = await self._store.camera_changes(since)
        self._looked_at = now
        for client_id, zone in zones.items():
            if client_id in self._zones and self._zones[client_id] != zone:
                self._zones[client_id] = zone
                self._stale.update((client_id, session.camera) for session in self._watching
                                   if session.client_id == client_id)
        for setting in settings:
            key = (setting.client_id, setting.camera)
            if setting.client_id in self._zones and self._cameras.get(key) != setting:
                self._cameras[key] = setting
                self._stale.add(key)

    def _apply(self) -> None:
        """Decide again for each stream that is new, whose settings changed or whose `until` came; then wait
        for the next `until`."""
        now = self._clock()
        for session in self._streams.live():
            key = (session.client_id, session.camera)
            if session.client_id not in self._zones:
                continue  # its settings are not read yet: it waits, decoding nothing
            current = self._watching.get(session)
            came = current is not None and current.until is not None and current.until <= now
            if current is not None and key not in self._stale and not came:
                continue
            zone = arming.zone(self._zones[session.client_id])
            watch = decide(self._settings, *key, self._cameras.get(key), zone, now)
            self._watching[session] = watch
            if current is not None and current.armed != watch.armed:
                log.info("client %d camera %r %s", *key, "armed" if watch.armed else "disarmed")
            _watch(session.analysis, watch)
        self._stale.clear()
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ends = [watch.until for watch in self._watching.values() if watch.until is not None]
        if ends:
            self._timer = asyncio.get_running_loop().call_later(max(0.0, min(ends) - now), self._due.set)


def _log_failure(error: Exception) -> None:
    if is_busy(error):
        log.warning("could not read camera settings: database busy (%s); will retry", error)
    else:
        log.error("could not read camera settings; will retry", exc_info=error)


def _watch(analysis: StreamAnalysis, watch: Watch) -> None:
    """Make a stream's analysis follow a decision."""
    if analysis.tuning != watch.tuning:
        analysis.retune(watch.tuning)
    if watch.armed:
        analysis.arm()
    else:
        analysis.disarm()


async def _first_of(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    """Wait until one of `events` is set, or `seconds` have passed."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
