"""The server process's own resources: its open-file limit, its heap, and running out of descriptors."""

import asyncio
import ctypes
import errno
import logging
import os
import resource
import time

log = logging.getLogger(__name__)

# How often running out of file descriptors is logged: every accept fails while it lasts.
EMFILE_LOG_SECONDS = 60.0


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; return the limit in force.

    Every stream and every waiting socket holds a descriptor; systemd's default soft limit (1024) is
    meant to be raised by programs that need more, up to the hard limit the operator set.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def _libc_malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim with
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def trim_heap() -> None:
    """Give the heap's free memory back to the operating system (glibc otherwise keeps it).

    An ended stream's decoder frees megabytes of frames that glibc keeps in its arenas: measured in review,
    a reconnect flood left 1.1 GB of RSS that a trim brought back to 13 MB. Run in a worker thread.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def quiet_resource_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log running out of file descriptors as one line a minute, not one traceback per failed accept."""
    last_logged = -EMFILE_LOG_SECONDS

    def handle(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        nonlocal last_logged
        error = context.get("exception")
        exhausted = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
        if isinstance(error, OSError) and error.errno in exhausted:
            if time.monotonic() - last_logged >= EMFILE_LOG_SECONDS:
                last_logged = time.monotonic()
                log.error("cannot accept connections: %s (open-file limit %d); new agents wait until "
                          "descriptors free up", os.strerror(error.errno),
                          resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
