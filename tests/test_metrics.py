import resource

from prometheus_client.parser import text_string_to_metric_families

from vigint.metrics import Histogram, Metrics


def test_a_quantile_is_the_upper_bound_of_its_bucket():
    lag = Histogram()
    for seconds in [0.004] * 98 + [0.3, 7.0]:
        lag.observe(seconds)
    assert (lag.quantile(0.5), lag.quantile(0.99), lag.quantile(1.0)) == (0.005, 0.5, float("inf"))
    assert Histogram().quantile(0.99) == 0.005  # nothing observed: the first bucket, not an error


def samples_of(page: str) -> dict[tuple[str, tuple], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(page) for sample in family.samples}


def test_the_page_is_valid_prometheus_text_with_every_counter_and_label():
    metrics = Metrics(frames_decoded=42)
    metrics.auth_failures["invalid_key"] += 3
    metrics.decode_lag.observe(0.02)
    samples = samples_of(metrics.render({7: 2}, {"active": 1, "idle": 1}, 1.5))
    assert samples[("vigint_streams_connected", (("client_id", "7"),))] == 2
    assert samples[("vigint_frames_decoded_total", ())] == 42
    assert samples[("vigint_auth_failures_total", (("reason", "invalid_key"),))] == 3
    assert samples[("vigint_decode_lag_seconds_bucket", (("le", "0.025"),))] == 1
    assert samples[("vigint_decode_lag_seconds_bucket", (("le", "0.01"),))] == 0
    assert samples[("vigint_decode_lag_seconds_bucket", (("le", "+Inf"),))] == 1
    assert (samples[("vigint_decode_lag_seconds_count", ())] == 1
            and samples[("vigint_decode_lag_seconds_sum", ())] == 0.02)
    assert samples[("vigint_usage_flush_lag_seconds", ())] == 1.5


def test_the_page_describes_the_process_too():
    samples = samples_of(Metrics().render({}, {}, 0))
    assert samples[("process_resident_memory_bytes", ())] > 1_000_000
    assert samples[("process_open_fds", ())] >= 3  # at least stdin, stdout and stderr
    assert samples[("process_max_fds", ())] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert samples[("process_cpu_seconds_total", ())] > 0
