import asyncio
import logging
import time

from vigint.tasks import every


async def test_every_runs_at_once_keeps_going_after_a_failure_and_ends_as_soon_as_it_is_stopped(caplog):
    stopping, runs = asyncio.Event(), []

    async def job():
        runs.append(time.monotonic())
        if len(runs) == 2:
            raise OSError("database is locked")

    began = time.monotonic()
    loop = asyncio.create_task(every(0.05, stopping, job, logging.getLogger("vigint.test"), "job failed; will retry"))
    while len(runs) < 4:
        await asyncio.sleep(0.01)
    assert runs[0] - began < 0.05  # the first run does not wait for a period
    assert "job failed; will retry" in caplog.text and "database is locked" in caplog.text
    every_hour = asyncio.create_task(every(3600, stopping, job, logging.getLogger("vigint.test"), "failed"))
    await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(asyncio.gather(loop, every_hour), 1)  # an hour-long wait ends with the stop
