from vigint.billing.meter import UsageMeter


def test_stream_time_is_split_at_hour_boundaries():
    meter = UsageMeter()
    meter.add_stream_time(7, 3600 * 10 - 30, 3600 * 10 + 90)
    assert sorted((d.bucket_start, d.stream_seconds) for d in meter.drain()) == [(32400, 30), (36000, 90)]
    assert meter.drain() == []


def test_counters_accumulate_per_key_and_bucket_and_survive_a_failed_flush():
    meter = UsageMeter()
    meter.add_bytes(1, 100, 10)
    meter.add_bytes(1, 50, 20)
    meter.add_frames(1, 3, 30)
    meter.add_bytes(2, 7, 10)
    deltas = meter.drain()
    meter.restore(deltas)
    meter.add_bytes(1, 1, 40)
    by_key = {d.key_id: d for d in meter.drain()}
    assert (by_key[1].bytes_received, by_key[1].frames_decoded, by_key[2].bytes_received) == (151, 3, 7)
