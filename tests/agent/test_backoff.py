import random

from vigint.agent.backoff import Backoff


def test_delays_grow_exponentially_with_jitter_up_to_the_cap():
    backoff = Backoff(base=1, cap=30, rng=random.Random(1))
    delays = [backoff.next_delay(now=0) for _ in range(8)]
    for attempt, delay in enumerate(delays):
        ceiling = min(30, 2 ** attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 30


def test_a_healthy_period_resets_the_sequence_and_a_short_one_does_not():
    backoff = Backoff(base=1, cap=30, healthy_seconds=60, rng=random.Random(2))
    for _ in range(5):
        backoff.next_delay(now=0)
    backoff.connected(now=100)
    assert backoff.next_delay(now=110) > 16  # up for 10 s only: keeps growing
    backoff.connected(now=200)
    assert backoff.next_delay(now=300) <= 1  # up for 100 s: starts again from the base
