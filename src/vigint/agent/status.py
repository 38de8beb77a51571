"""What each camera is doing, for the live view on a terminal and for log lines elsewhere."""

import enum
import time
from collections import deque
from dataclasses import dataclass, field

from rich.markup import escape
from rich.table import Table


class State(enum.StrEnum):
    """A camera's state, as shown to the customer."""

    STARTING = "starting"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    WAITING = "waiting to retry"
    SOURCE_DOWN = "camera unavailable"
    FINISHED = "finished"
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
    dropped_gops: int = 0
    reconnects: int = 0
    incidents: int = 0
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

    def line(self) -> str:
        """One log line: the camera's state and counters."""
        fps, bps = self.rates()
        detail = f" ({self.detail})" if self.detail else ""
        return (f"camera {self.name}: {self.state.value}{detail}; {fps:.1f} fps, {bps / 1e6:.2f} Mbit/s, "
                f"{self.units_sent} frames sent, {self.dropped_gops} GOPs dropped, {self.reconnects} reconnects")


def table(statuses: list[CameraStatus], server: str) -> Table:
    """Return the live view: one row per camera."""
    view = Table(title=f"Vigint agent → {server}", caption="Ctrl-C stops the agent")
    for column in ("Camera", "Source", "State", "fps", "Mbit/s", "Sent", "Dropped GOPs", "Reconnects"):
        view.add_column(column, justify="right" if column in {"fps", "Mbit/s", "Sent", "Dropped GOPs",
                                                              "Reconnects"} else "left")
    for status in statuses:
        fps, bps = status.rates()
        style = {State.STREAMING: "green", State.WAITING: "yellow", State.SOURCE_DOWN: "red"}.get(status.state, "")
        state = f"[{style}]{status.state.value}[/]" if style else status.state.value
        view.add_row(escape(status.name), escape(status.source),
                     state + (f"\n{escape(status.detail)}" if status.detail else ""),
                     f"{fps:.1f}", f"{bps / 1e6:.2f}", str(status.units_sent), str(status.dropped_gops),
                     str(status.reconnects))
    return view
