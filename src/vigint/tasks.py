"""Small asyncio helpers shared by the server, the agent and the demo."""

import asyncio
from collections.abc import Coroutine


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` have passed; return whether it was set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


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

    async def drain(self) -> None:
        """Wait for every task to end; their exceptions were theirs to log."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
