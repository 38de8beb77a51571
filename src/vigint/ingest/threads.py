"""Worker threads below the process's CPU priority, for work that must yield to live streams (backfills).

Linux schedules threads on their own and lets a process lower one thread's priority (`setpriority` on its
thread id); elsewhere the threads keep the process's priority and only their number limits them.
"""

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

# Well below live decoding (0), above nothing that matters: it still runs when idle
LOW_PRIORITY_NICENESS = 10


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOW_PRIORITY_NICENESS)
    except (AttributeError, OSError) as error:  # not Linux, or not permitted: the pool's size still bounds it
        log.debug("cannot lower a backfill thread's priority: %s", error)


def low_priority_pool(threads: int, name: str) -> ThreadPoolExecutor:
    """Return a pool of `threads` worker threads, each at a lower CPU priority than the rest of the
    process."""
    return ThreadPoolExecutor(threads, thread_name_prefix=name, initializer=_lower_priority)
