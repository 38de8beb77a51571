"""What each camera is doing, for the live view on a terminal and for log lines elsewhere."""

import enum
import time
from collections import deque
from dataclasses import dataclass, field

from rich.markup import escape
from rich.table import Table

from vigint import keys
from vigint.agent.spool import SpoolStats
from vigint.media import MICROSECONDS, SECONDS_PER_DAY
from vigint.words import plural

# A key that expires sooner than this is shown and logged (the server says when, see docs/protocol.md): time
# to ask the operator for its successor; a longer-lived key's expiry is nobody's concern yet.
KEY_EXPIRY_SHOWN_DAYS = 14


class State(enum.StrEnum):
    """A camera's state, as shown to the customer."""

    STARTING = "starting"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    WAITING = "waiting to retry"
    REFUSED = "key refused"  # by the server, after it worked: the client was revoked (standing.py)
    SOURCE_DOWN = "camera unavailable"
    FINISHED = "finished"
    UNCONFIGURED = "no longer configured"  # its spooled footage is still sent (supervisor.py)
    STOPPED = "stopped"


@dataclass
class CameraStatus:
    """Counters and state of one camera; updated by its reader and uplink, read by the view."""

    name: str
    source: str  # already redacted
    state: State = State.STARTING
    detail: str = ""
    units_sent: int = 0
    bytes_sent: int = 0
    reconnects: int = 0
    incidents: int = 0
    spool: SpoolStats = SpoolStats()  # refreshed by the supervisor: another camera's GOP may evict this one's
    backfill: str = ""  # what the backfill connection is doing, when it is doing something
    key_expires_at: float | None = None  # when the server says the API key stops working
    _recent: deque = field(default_factory=lambda: deque(maxlen=256), repr=False)  # (time, bytes) sent

    def sent(self, size: int, now: float | None = None) -> None:
        """Count one access unit of `size` bytes sent."""
        self.units_sent += 1
        self.bytes_sent += size
        self._recent.append((time.monotonic() if now is None else now, size))

    def rates(self, now: float | None = None, window: float = 5.0) -> tuple[float, float]:
        """Return (frames per second, bits per second) over the last `window` seconds."""
        now = time.monotonic() if now is None else now
        recent = [size for at, size in self._recent if now - at <= window]
        return len(recent) / window, sum(recent) * 8 / window

    @property
    def dropped_gops(self) -> int:
        """GOPs lost for good (the spool's cap, disk errors): everything else is sent live or backfilled."""
        return self.spool.dropped_gops

    def spooled(self, now: float | None = None) -> str:
        """The spool in a few words: "spool 38 MB, 4 min behind", and what the backfill does."""
        if not self.spool.gops:
            text = "spool empty"
        else:
            behind = (time.time() if now is None else now) - self.spool.oldest_us / MICROSECONDS
            megabytes = self.spool.bytes / 1e6
            text = f"spool {megabytes:.{1 if megabytes < 10 else 0}f} MB, {duration(behind)} behind"
        return f"{text}, {self.backfill}" if self.backfill else text

    def key_expiry(self, now: float | None = None) -> str:
        """"API key expires in 3 days: ask your Vigint operator for its successor" when the key expires within
        KEY_EXPIRY_SHOWN_DAYS; else empty."""
        now = time.time() if now is None else now
        if self.key_expires_at is None or self.key_expires_at - now > KEY_EXPIRY_SHOWN_DAYS * SECONDS_PER_DAY:
            return ""
        return (f"API key {keys.expires_in(self.key_expires_at, now)}: "
                "ask your Vigint operator for its successor")

    def line(self) -> str:
        """One log line: the camera's state and counters, and the key's expiry when it is near."""
        fps, bps = self.rates()
        detail = f" ({self.detail})" if self.detail else ""
        expiry = f"; {self.key_expiry()}" if self.key_expiry() else ""
        return (f"camera {self.name}: {self.state.value}{detail}; {fps:.1f} fps, {bps / 1e6:.2f} Mbit/s, "
                f"{plural(self.units_sent, 'frame')} sent, {self.spooled()}, "
                f"{plural(self.dropped_gops, 'GOP')} dropped, "
                f"{plural(self.reconnects, 'reconnect')}{expiry}")


def duration(seconds: float) -> str:
    """A length of footage or a delay for people: "40 s", "4 min", "2.5 h"."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


STATE_STYLES = {
    State.STREAMING: "green",
    State.WAITING: "yellow",
    State.SOURCE_DOWN: "red",
    State.REFUSED: "red",
}
TABLE_COLUMNS = ("Camera", "Source", "State", "fps", "Mbit/s", "Sent", "Spool", "Dropped GOPs", "Reconnects")
RIGHT_ALIGNED = {"fps", "Mbit/s", "Sent", "Dropped GOPs", "Reconnects"}


def table(statuses: list[CameraStatus], server: str) -> Table:
    """Return the live view: one row per camera, and the API key's expiry under the table when it is near."""
    expiry = next((text for status in statuses if (text := status.key_expiry())), "")
    caption = "Ctrl-C stops the agent"
    if expiry:
        caption = f"[bold yellow]{escape(expiry)}[/]\n{caption}"
    view = Table(title=f"Vigint agent → {server}", caption=caption)
    for column in TABLE_COLUMNS:
        view.add_column(column, justify="right" if column in RIGHT_ALIGNED else "left")
    for status in statuses:
        fps, bps = status.rates()
        style = STATE_STYLES.get(status.state, "")
        state = f"[{style}]{status.state.value}[/]" if style else status.state.value
        view.add_row(escape(status.name), escape(status.source),
                     state + (f"\n{escape(status.detail)}" if status.detail else ""),
                     f"{fps:.1f}", f"{bps / 1e6:.2f}", str(status.units_sent), escape(status.spooled()),
                     str(status.dropped_gops), str(status.reconnects))
    return view
