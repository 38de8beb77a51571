from prometheus_client.parser import text_string_to_metric_families

from vigint.metrics import Histogram, Metrics


def test_a_quantile_is_the_upper_bound_of_its_bucket():
    lag = Histogram()
    for seconds in [0.004] * 98 + [0.3, 7.0]:
        lag.observe(seconds)
    assert (lag.quantile(0.5), lag.quantile(0.99), lag.quantile(1.0)) == (0.005, 0.5, float("inf"))
    assert Histogram().quantile(0.99) == 0.005  # nothing observed: the first bucket, not an error


def test_the_page_is_valid_prometheus_text_with_every_counter_and_label():
    metrics = Metrics(frames_decoded=42)
    metrics.auth_failures["invalid_key"] += 3
    metrics.decode_lag.observe(0.02)
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(metrics.render({7: 2}, {"active": 1, "idle": 1}, 1.5)) for sample in family.samples}
    assert samples[("vigint_streams_connected", (("client_id", "7"),))] == 2
    assert samples[("vigint_frames_decoded_total", ())] == 42
    assert samples[("vigint_auth_failures_total", (("reason", "invalid_key"),))] == 3
    assert samples[("vigint_decode_lag_seconds_bucket", (("le", "0.025"),))] == 1
    assert samples[("vigint_decode_lag_seconds_bucket", (("le", "0.01"),))] == 0
    assert samples[("vigint_usage_flush_lag_seconds", ())] == 1.5
