"""Small asyncio helpers shared by the server, the agent and the demo."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine

CANCEL_GRACE_SECONDS = 1.0


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` have passed; return whether it was set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def every(seconds: float, stopping: asyncio.Event, job: Callable[[], Awaitable[object]],
                logger: logging.Logger, failure: str) -> None:
    """Run `job` now and every `seconds` until `stopping` is set, which also ends the wait at once.

    A failed run is logged to `logger` as `failure`, with its traceback, and retried at the next turn: a busy
    database or an unreachable mail server must not end the loop.
    """
    while not stopping.is_set():
        try:
            await job()
        except Exception:  # noqa: BLE001 - logged; the next turn retries
            logger.exception(failure)
        await wait_for_event(stopping, seconds)


class TaskSet:
    """Background tasks, referenced until they end (the event loop keeps only weak references)."""

    def __init__(self):
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, job: Coroutine) -> asyncio.Task:
        """Start `job` as a task and keep it until it ends."""
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for every task to end, then cancel those still running after `timeout` seconds.

        Their exceptions were theirs to log. A cancelled task gets a moment to unwind, but no more: a task
        that ignores cancellation must not keep the process from exiting.
        """
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=CANCEL_GRACE_SECONDS)
