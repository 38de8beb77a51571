"""Server metrics, kept in memory and rendered in the Prometheus text format for GET /metrics."""

import bisect
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# Receipt-to-ring delay: real-time analysis needs well under a second; the top buckets show overload.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Histogram:
    """A cumulative histogram with fixed bucket bounds (seconds)."""

    bounds: tuple[float, ...] = LAG_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        """Record one value."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def quantile(self, q: float) -> float:
        """Return the upper bound of the bucket holding quantile `q` (inf past the last bound)."""
        rank, seen = q * self.count, 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            seen += count
            if seen >= rank:
                return bound
        return float("inf")


@dataclass
class Metrics:
    """Counters the server updates as it goes; `render` adds the live gauges it is given."""

    frames_decoded: int = 0
    backfill_frames_decoded: int = 0  # of them, recorded footage (docs/protocol.md 4a)
    bytes_received: int = 0
    decode_errors: int = 0
    auth_failures: Counter = field(default_factory=Counter)
    decode_lag: Histogram = field(default_factory=Histogram)
    incidents: int = 0
    alerts_delivered: int = 0
    alerts_failed: int = 0
    clips_skipped: Counter = field(default_factory=Counter)  # by reason: disk_full, write_error
    clips_cut: Counter = field(default_factory=Counter)  # stopped growing or left unfinished, by reason (the same)
    stills_skipped: Counter = field(default_factory=Counter)  # by reason: write_error
    ai_calls: Counter = field(default_factory=Counter)  # by outcome
    wakes: Counter = field(default_factory=Counter)  # idle streams woken, by cause: keyframe, size
    decode_cpu_seconds: Counter = field(default_factory=Counter)  # by mode: active, idle
    decode_saturation: Callable[[], float] = lambda: 0.0  # the server's decode load (see analysis/load.py)

    def render(self, streams_by_client: dict[int, int], streams_by_mode: dict[str, int], usage_flush_lag: float) -> str:
        """Return the metrics page, given the live streams per client id and per mode, and the seconds since the
        last usage flush."""
        lines = [
            *_family("vigint_streams_connected", "gauge", "Authenticated camera streams open now.",
                     _labelled("client_id", streams_by_client)),
            *_family("vigint_streams", "gauge", "Open streams by analysis mode (idle: keyframe checks only).",
                     _labelled("mode", streams_by_mode)),
            *_family("vigint_stream_wakes_total", "counter", "Idle streams woken to a full decode, by cause.",
                     _labelled("cause", self.wakes)),
            *_family("vigint_decode_cpu_seconds_total", "counter", "Worker CPU time decoding and analysing, by mode.",
                     _labelled("mode", {mode: f"{seconds:.3f}" for mode, seconds in self.decode_cpu_seconds.items()})),
            *_family("vigint_decode_saturation", "gauge", "Share of the last seconds decode batches waited for a "
                     "thread (past 0.5, streams over max_decode_backlog_seconds behind skip ahead).",
                     [("", f"{self.decode_saturation():.3f}")]),
            *_family("vigint_frames_decoded_total", "counter", "Video frames decoded.", [("", self.frames_decoded)]),
            *_family("vigint_backfill_frames_decoded_total", "counter", "Frames of footage recorded during outages "
                     "(backfill) decoded, also counted in vigint_frames_decoded_total.",
                     [("", self.backfill_frames_decoded)]),
            *_family("vigint_bytes_received_total", "counter", "Media bytes received from agents.",
                     [("", self.bytes_received)]),
            *_family("vigint_decode_errors_total", "counter", "Media messages that could not be decoded.",
                     [("", self.decode_errors)]),
            *_family("vigint_auth_failures_total", "counter", "Refused hellos, by reason.",
                     _labelled("reason", self.auth_failures)),
            *self._lag_lines(),
            *_family("vigint_incidents_total", "counter", "Incidents opened.", [("", self.incidents)]),
            *_family("vigint_alerts_delivered_total", "counter", "Alerts (emails, webhooks) delivered.",
                     [("", self.alerts_delivered)]),
            *_family("vigint_alerts_failed_total", "counter", "Alert delivery attempts that failed (retried later).",
                     [("", self.alerts_failed)]),
            *_family("vigint_clips_skipped_total", "counter", "Incidents left without a clip, by reason (disk_full: "
                     "free space guard).", _labelled("reason", self.clips_skipped)),
            *_family("vigint_clips_cut_total", "counter", "Clips that stopped growing before their incident's end, or "
                     "could not be finished (kept as they grew), by reason.", _labelled("reason", self.clips_cut)),
            *_family("vigint_stills_skipped_total", "counter", "Incident stills (JPEG) that could not be written, by "
                     "reason.", _labelled("reason", self.stills_skipped)),
            *_family("vigint_ai_calls_total", "counter", "AI verifications, by outcome.",
                     _labelled("outcome", self.ai_calls)),
            *_family("vigint_usage_flush_lag_seconds", "gauge", "Seconds since usage was last written to the database.",
                     [("", f"{usage_flush_lag:.3f}")]),
        ]
        return "\n".join(lines) + "\n"

    def _lag_lines(self) -> list[str]:
        lines = ["# HELP vigint_decode_lag_seconds Delay from receipt of a packet to its frame in the ring.",
                 "# TYPE vigint_decode_lag_seconds histogram"]
        cumulative = 0
        for bound, count in zip((*self.decode_lag.bounds, "+Inf"), self.decode_lag.counts):
            cumulative += count
            lines.append(f'vigint_decode_lag_seconds_bucket{{le="{bound}"}} {cumulative}')
        return lines + [f"vigint_decode_lag_seconds_sum {self.decode_lag.total}",
                        f"vigint_decode_lag_seconds_count {self.decode_lag.count}"]


def _labelled(label: str, values: Mapping) -> list[tuple[str, object]]:
    """Return the samples of a family with one label, sorted by its value."""
    return [(f'{{{label}="{key}"}}', value) for key, value in sorted(values.items())]


def _family(name: str, kind: str, text: str, samples: list[tuple[str, object]]) -> list[str]:
    """Return one metric family in the Prometheus text format: its help, its type, then each (labels, value)."""
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *(f"{name}{labels} {value}" for labels, value in samples)]
