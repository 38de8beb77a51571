from vigint.limiter import RateLimiter


def test_blocks_after_the_limit_within_the_window_and_releases_after():
    limiter = RateLimiter(max_failures=3, window_seconds=60)
    for at in (0, 10, 20):
        assert limiter.retry_after("1.2.3.4", at) == 0
        limiter.record("1.2.3.4", at)
    assert limiter.retry_after("1.2.3.4", 21) == 39  # until the first failure is a minute old
    assert limiter.retry_after("5.6.7.8", 21) == 0  # other addresses are not affected
    assert limiter.retry_after("1.2.3.4", 60) == 0


def test_failures_spread_beyond_the_window_never_block():
    limiter = RateLimiter(max_failures=3, window_seconds=60)
    for at in range(0, 600, 30):
        limiter.record("1.2.3.4", at)
        assert limiter.retry_after("1.2.3.4", at) == 0


def test_memory_is_bounded():
    limiter = RateLimiter(max_failures=1, window_seconds=60, max_addresses=100)
    for index in range(1000):
        limiter.record(f"10.0.{index // 256}.{index % 256}", 0)
    assert limiter.retry_after("10.0.3.231", 1) > 0  # the most recent are remembered
    assert limiter.retry_after("10.0.0.0", 1) == 0
