"""Server metrics, kept in memory and rendered in the Prometheus text format for GET /metrics."""

import bisect
from collections import Counter
from collections.abc import Callable
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
    bytes_received: int = 0
    decode_errors: int = 0
    auth_failures: Counter = field(default_factory=Counter)
    decode_lag: Histogram = field(default_factory=Histogram)
    incidents: int = 0
    alerts_delivered: int = 0
    alerts_failed: int = 0
    clips_skipped: Counter = field(default_factory=Counter)  # by reason: disk_full, write_error
    ai_calls: Counter = field(default_factory=Counter)  # by outcome
    wakes: Counter = field(default_factory=Counter)  # idle streams woken, by cause: keyframe, size
    decode_cpu_seconds: Counter = field(default_factory=Counter)  # by mode: active, idle
    decode_saturation: Callable[[], float] = lambda: 0.0  # the server's decode load (see analysis/load.py)

    def render(self, streams_by_client: dict[int, int], streams_by_mode: dict[str, int], usage_flush_lag: float) -> str:
        """Return the metrics page, given the live streams per client id and per mode, and the seconds since the
        last usage flush."""
        lines = [
            "# HELP vigint_streams_connected Authenticated camera streams open now.",
            "# TYPE vigint_streams_connected gauge",
            *(f'vigint_streams_connected{{client_id="{client}"}} {count}'
              for client, count in sorted(streams_by_client.items())),
            "# HELP vigint_streams Open streams by analysis mode (idle: keyframe checks only).",
            "# TYPE vigint_streams gauge",
            *(f'vigint_streams{{mode="{mode}"}} {count}' for mode, count in sorted(streams_by_mode.items())),
            "# HELP vigint_stream_wakes_total Idle streams woken to a full decode, by cause.",
            "# TYPE vigint_stream_wakes_total counter",
            *(f'vigint_stream_wakes_total{{cause="{cause}"}} {count}' for cause, count in sorted(self.wakes.items())),
            "# HELP vigint_decode_cpu_seconds_total Worker CPU time decoding and analysing, by mode.",
            "# TYPE vigint_decode_cpu_seconds_total counter",
            *(f'vigint_decode_cpu_seconds_total{{mode="{mode}"}} {seconds:.3f}'
              for mode, seconds in sorted(self.decode_cpu_seconds.items())),
            "# HELP vigint_decode_saturation Share of the last seconds decode batches waited for a thread "
            "(past 0.5, streams over max_decode_backlog_seconds behind skip ahead).",
            "# TYPE vigint_decode_saturation gauge",
            f"vigint_decode_saturation {self.decode_saturation():.3f}",
            "# HELP vigint_frames_decoded_total Video frames decoded.",
            "# TYPE vigint_frames_decoded_total counter",
            f"vigint_frames_decoded_total {self.frames_decoded}",
            "# HELP vigint_bytes_received_total Media bytes received from agents.",
            "# TYPE vigint_bytes_received_total counter",
            f"vigint_bytes_received_total {self.bytes_received}",
            "# HELP vigint_decode_errors_total Media messages that could not be decoded.",
            "# TYPE vigint_decode_errors_total counter",
            f"vigint_decode_errors_total {self.decode_errors}",
            "# HELP vigint_auth_failures_total Refused hellos, by reason.",
            "# TYPE vigint_auth_failures_total counter",
            *(f'vigint_auth_failures_total{{reason="{reason}"}} {count}'
              for reason, count in sorted(self.auth_failures.items())),
            *self._lag_lines(),
            "# HELP vigint_incidents_total Incidents opened.",
            "# TYPE vigint_incidents_total counter",
            f"vigint_incidents_total {self.incidents}",
            "# HELP vigint_alerts_delivered_total Alerts (emails, webhooks) delivered.",
            "# TYPE vigint_alerts_delivered_total counter",
            f"vigint_alerts_delivered_total {self.alerts_delivered}",
            "# HELP vigint_alerts_failed_total Alert delivery attempts that failed (retried later).",
            "# TYPE vigint_alerts_failed_total counter",
            f"vigint_alerts_failed_total {self.alerts_failed}",
            "# HELP vigint_clips_skipped_total Incidents left without a clip, by reason (disk_full: free space guard).",
            "# TYPE vigint_clips_skipped_total counter",
            *(f'vigint_clips_skipped_total{{reason="{reason}"}} {count}'
              for reason, count in sorted(self.clips_skipped.items())),
            "# HELP vigint_ai_calls_total AI verifications, by outcome.",
            "# TYPE vigint_ai_calls_total counter",
            *(f'vigint_ai_calls_total{{outcome="{outcome}"}} {count}'
              for outcome, count in sorted(self.ai_calls.items())),
            "# HELP vigint_usage_flush_lag_seconds Seconds since usage was last written to the database.",
            "# TYPE vigint_usage_flush_lag_seconds gauge",
            f"vigint_usage_flush_lag_seconds {usage_flush_lag:.3f}",
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
