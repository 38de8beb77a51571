"""Server metrics: counters kept in memory, exposed for GET /metrics in the Prometheus text format.

The stages count on plain attributes (`metrics.incidents += 1`), on the event loop, for nothing per frame;
prometheus_client's own Counter objects would take a lock at every increment. At each scrape, `render` turns
the counters and the live gauges it is given into metric families for prometheus_client to write out (names,
help, escaping, the histogram's series), beside its process metrics (`process_cpu_seconds_total`,
`process_resident_memory_bytes`, `process_open_fds`, …).
"""

import bisect
import itertools
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

# Receipt-to-ring delay: real-time analysis needs well under a second; the top buckets show overload.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# This process's CPU, memory and file descriptors, read from /proc at each scrape.
_PROCESS = ProcessCollector(registry=None)


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
        rank = q * self.count
        seen = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            seen += count
            if seen >= rank:
                return bound
        return float("inf")


class _Scrape:
    """One scrape's metric families, collected by a registry like any prometheus_client collector."""

    def __init__(self, families: list[Metric]):
        self._families = families

    def collect(self) -> list[Metric]:
        """Return the families, as the registry asks at each scrape."""
        return self._families


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
    # stopped growing or left unfinished, by reason (the same)
    clips_cut: Counter = field(default_factory=Counter)
    stills_skipped: Counter = field(default_factory=Counter)  # by reason: write_error
    ai_calls: Counter = field(default_factory=Counter)  # by outcome
    wakes: Counter = field(default_factory=Counter)  # idle streams woken, by cause: keyframe, size
    decode_cpu_seconds: Counter = field(default_factory=Counter)  # by mode: active, idle
    decode_saturation: Callable[[], float] = lambda: 0.0  # the server's decode load (see analysis/load.py)
    live_viewers: Callable[[], int] = lambda: 0  # live views the customers' page sends now

    def render(self, streams_by_client: dict[int, int], streams_by_mode: dict[str, int],
               usage_flush_lag: float) -> str:
        """Return the metrics page, given the live streams per client id and per mode, and the seconds since
        the last usage flush."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Scrape(self._families(streams_by_client, streams_by_mode, usage_flush_lag)))
        registry.register(_PROCESS)
        return generate_latest(registry).decode()

    def _families(self, streams_by_client: dict[int, int], streams_by_mode: dict[str, int],
                  usage_flush_lag: float) -> list[Metric]:
        return [
            _labelled(GaugeMetricFamily, "vigint_streams_connected", "Authenticated camera streams open now.",
                      "client_id", streams_by_client),
            _labelled(GaugeMetricFamily, "vigint_streams",
                      "Open streams by analysis mode (idle: keyframe checks only).", "mode", streams_by_mode),
            _labelled(CounterMetricFamily, "vigint_stream_wakes_total",
                      "Idle streams woken to a full decode, by cause.", "cause", self.wakes),
            _labelled(CounterMetricFamily, "vigint_decode_cpu_seconds_total",
                      "Worker CPU time decoding and analysing, by mode.", "mode", self.decode_cpu_seconds),
            GaugeMetricFamily("vigint_decode_saturation", "Share of the last seconds decode batches waited "
                              "for a thread (past 0.5, streams over max_decode_backlog_seconds behind skip "
                              "ahead).", value=self.decode_saturation()),
            GaugeMetricFamily("vigint_live_viewers", "Live views of cameras this node sends now (see [web] "
                              "max_live_viewers).", value=self.live_viewers()),
            CounterMetricFamily("vigint_frames_decoded_total", "Video frames decoded.",
                                value=self.frames_decoded),
            CounterMetricFamily("vigint_backfill_frames_decoded_total", "Frames of footage recorded during "
                                "outages (backfill) decoded, also counted in vigint_frames_decoded_total.",
                                value=self.backfill_frames_decoded),
            CounterMetricFamily("vigint_bytes_received_total", "Media bytes received from agents.",
                                value=self.bytes_received),
            CounterMetricFamily("vigint_decode_errors_total", "Media messages that could not be decoded.",
                                value=self.decode_errors),
            _labelled(CounterMetricFamily, "vigint_auth_failures_total", "Refused hellos, by reason.",
                      "reason", self.auth_failures),
            self._lag_family(),
            CounterMetricFamily("vigint_incidents_total", "Incidents opened.", value=self.incidents),
            CounterMetricFamily("vigint_alerts_delivered_total", "Alerts (emails, webhooks) delivered.",
                                value=self.alerts_delivered),
            CounterMetricFamily("vigint_alerts_failed_total",
                                "Alert delivery attempts that failed (retried later).",
                                value=self.alerts_failed),
            _labelled(CounterMetricFamily, "vigint_clips_skipped_total",
                      "Incidents left without a clip, by reason (disk_full: free space guard).", "reason",
                      self.clips_skipped),
            _labelled(CounterMetricFamily, "vigint_clips_cut_total", "Clips that stopped growing before "
                      "their incident's end, or could not be finished (kept as they grew), by reason.",
                      "reason", self.clips_cut),
            _labelled(CounterMetricFamily, "vigint_stills_skipped_total",
                      "Incident stills (JPEG) that could not be written, by reason.", "reason",
                      self.stills_skipped),
            _labelled(CounterMetricFamily, "vigint_ai_calls_total", "AI verifications, by outcome.",
                      "outcome", self.ai_calls),
            GaugeMetricFamily("vigint_usage_flush_lag_seconds",
                              "Seconds since usage was last written to the database.", value=usage_flush_lag),
        ]

    def _lag_family(self) -> HistogramMetricFamily:
        lag = self.decode_lag
        bounds = [*(str(bound) for bound in lag.bounds), "+Inf"]
        buckets = list(zip(bounds, itertools.accumulate(lag.counts)))
        return HistogramMetricFamily("vigint_decode_lag_seconds",
                                     "Delay from receipt of a packet to its frame in the ring.",
                                     buckets=buckets, sum_value=lag.total)


def _labelled(kind: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str, doc: str, label: str,
              values: Mapping) -> Metric:
    """Return the family `kind` named `name` with one sample per item of `values` (its one label's value: the
    sample), sorted by label."""
    family = kind(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([str(key)], value)
    return family
