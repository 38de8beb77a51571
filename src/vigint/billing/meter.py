"""Usage metering, pure: counters batched in memory per (key, hour), drained by the server's flush task."""

from vigint.store.records import UsageDelta

BUCKET_SECONDS = 3600
# A step between two access units' decode times longer than this is footage the agent dropped, not footage
# sent.
MAX_FOOTAGE_STEP_SECONDS = 2.0


def bucket_of(timestamp: float) -> int:
    """Return the start (Unix seconds) of the hourly bucket holding `timestamp`."""
    return int(timestamp // BUCKET_SECONDS) * BUCKET_SECONDS


def footage_seconds(previous_dts: int | None, dts: int | None) -> float:
    """Return the footage time an access unit at `dts` (µs) adds after the newest one before it: the step
    between them, none for the first or one out of order, at most MAX_FOOTAGE_STEP_SECONDS across a gap. The
    times are those the stream's gate took, which advance like frames (see analysis/intake.py): a sender
    cannot shrink them."""
    if previous_dts is None or dts is None or dts <= previous_dts:
        return 0.0
    return min((dts - previous_dts) / 1e6, MAX_FOOTAGE_STEP_SECONDS)


class UsageMeter:
    """Accumulates usage between flushes; never a database write per frame."""

    def __init__(self):
        self._pending: dict[tuple[int, int], UsageDelta] = {}

    def _delta(self, key_id: int, timestamp: float) -> UsageDelta:
        bucket = bucket_of(timestamp)
        delta = self._pending.get((key_id, bucket))
        if delta is None:
            delta = self._pending[(key_id, bucket)] = UsageDelta(key_id, bucket)
        return delta

    def add_bytes(self, key_id: int, count: int, now: float) -> None:
        """Count bytes received on a stream of `key_id`."""
        self._delta(key_id, now).bytes_received += count

    def add_frames(self, key_id: int, count: int, now: float) -> None:
        """Count frames decoded for a stream of `key_id`."""
        self._delta(key_id, now).frames_decoded += count

    def add_backfill(self, key_id: int, count: int, footage_seconds: float, now: float) -> None:
        """Count recorded footage received on a backfill of `key_id`: its bytes and footage time, apart from
        live."""
        delta = self._delta(key_id, now)
        delta.backfill_bytes += count
        delta.backfill_seconds += footage_seconds

    def add_ai_call(self, key_id: int, tokens: int, now: float) -> None:
        """Count one AI verification and the tokens it used, for `key_id`'s stream."""
        delta = self._delta(key_id, now)
        delta.ai_calls += 1
        delta.ai_tokens += tokens

    def add_alert(self, key_id: int, now: float) -> None:
        """Count one alert delivered for `key_id`'s stream."""
        self._delta(key_id, now).alerts_sent += 1

    def add_live_view(self, key_id: int, seconds: float, now: float) -> None:
        """Count `seconds` of live view (summed over viewers) of the cameras streaming with `key_id`."""
        self._delta(key_id, now).live_view_seconds += seconds

    def add_stream_time(self, key_id: int, start: float, end: float) -> None:
        """Count the streaming time from `start` to `end`, split at hour boundaries."""
        while start < end:
            boundary = min(end, bucket_of(start) + BUCKET_SECONDS)
            self._delta(key_id, start).stream_seconds += boundary - start
            start = boundary

    def drain(self) -> list[UsageDelta]:
        """Return everything accumulated since the last drain, and start afresh."""
        deltas = list(self._pending.values())
        self._pending = {}
        return deltas

    def restore(self, deltas: list[UsageDelta]) -> None:
        """Put back deltas a failed flush could not write, so nothing is lost."""
        for delta in deltas:
            merged = self._delta(delta.key_id, delta.bucket_start)
            for name in ("stream_seconds", "bytes_received", "frames_decoded", "ai_calls", "ai_tokens",
                         "alerts_sent", "backfill_bytes", "backfill_seconds", "live_view_seconds"):
                setattr(merged, name, getattr(merged, name) + getattr(delta, name))
