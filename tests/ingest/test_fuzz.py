"""Fuzzing a real server: mutated real H.264 and generated hostile hellos, beside a healthy camera.

A fixed seed makes every run send the same inputs; scripts/fuzz.py runs the same generators for longer.
"""

import asyncio
import logging
from collections import Counter
from random import Random

from attacks import (
    HELLO_CODES,
    STREAM_CODES,
    HealthyStream,
    fuzz_videos,
    hellos,
    mutated_stream,
    run_all,
    send_first_message,
    send_mutation,
)
from footage import make_h264
from helpers import REALTIME, add_client, eventually, url

SEED = 10
STREAMS = 100
HELLOS = 300


async def decoded_frames(server, client_id: int) -> int:
    await server.flush_usage()
    return sum(row.frames_decoded for row in await server.store.usage_report(client_id, None, None))


@REALTIME
async def test_mutated_streams_and_hostile_hellos_leave_the_server_serving(start, caplog):
    caplog.set_level(logging.INFO)
    server = await start(max_auth_failures=1_000_000, max_streams_per_client=1_000)
    healthy_id, _, healthy_key = await add_client(server.store, "ok@example.test", "Healthy")
    attacker_id, _, attacker_key = await add_client(server.store, "fuzz@example.test", "Fuzzer")
    healthy = await asyncio.to_thread(HealthyStream(url(server), healthy_key, "lobby", make_h264(4)).start)
    rng = Random(SEED)
    sources = fuzz_videos()
    mutations = [mutated_stream(rng, rng.choice(sources), 1_700_000_000_000_000) for _ in range(STREAMS)]
    try:
        streams = [lambda i=i, m=m: send_mutation(url(server), attacker_key, f"fuzz-{i}", m)
                   for i, m in enumerate(mutations)]
        stream_codes = await run_all(streams, concurrency=8)
        first_messages = [lambda m=m: send_first_message(url(server), m) for m in hellos(rng, HELLOS)]
        hello_codes = await run_all(first_messages, concurrency=8)
        await eventually(lambda: not server.streams.of_client(attacker_id), timeout=10)
    finally:
        await asyncio.to_thread(healthy.stop)
    print(f"stream close codes {dict(Counter(stream_codes))}, "
          f"hello close codes {dict(Counter(hello_codes))}, "
          f"mutations {dict(Counter(kind for m in mutations for kind in m.kind.split(' + ')))}, "
          f"healthy: {healthy.frames_sent} frames, slowest ping {healthy.max_ping * 1000:.0f} ms")
    unexpected = [(code, m.kind) for code, m in zip(stream_codes, mutations) if code not in STREAM_CODES]
    assert not unexpected, unexpected
    assert set(hello_codes) <= HELLO_CODES, Counter(hello_codes)
    assert healthy.error is None, healthy.error
    await eventually(lambda: not server.streams.of_client(healthy_id), timeout=5)
    assert await decoded_frames(server, healthy_id) == healthy.frames_sent
    tracebacks = [record.getMessage() for record in caplog.records if record.exc_info]
    assert not tracebacks, tracebacks
