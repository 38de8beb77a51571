"""Recovery: a live node finishes the incidents a dead node (killed, crashed, its machine lost) was recording.

An incident's row names the run of a node recording it (`<node id>/<random>`, new at each start), from the
transaction that records it with its held alerts until its end, clip, stills and alerts are all recorded
(desk.py). A run that dies leaves its name there: its incident "ongoing", its clip fragmented and without
stills, its alerts held. Every node looks, as it starts and then every three usage flushes, for rows naming a
dead run: an earlier run of this same node (its host and port: two processes cannot listen on one port, so a
server restarted after `kill -9` recovers at once), or a run of a node that stopped, went silent for three
usage flushes (its heartbeat is its usage flush, as `vigint status` trusts), or is on this host with its
process gone. A node still recording is never taken from. For each, the node takes the row (one node wins),
closes the incident at its last recorded footage, finishes its clip as the recorder does (fragmented →
faststart, with its strip of stills) where its growing file is on this node's disk (the clips folder, or
data_dir/clips-growing with S3: elsewhere the clip stays as last published), then releases the alerts still
held: an alert is suppressed only by a verdict recorded with it. An alert a dead node was sending is retried
once its claim runs out, with the same Message-ID (emails.message_id).
"""

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from vigint.incidents import clips
from vigint.incidents.clipfiles import ClipContext, NoRoom, finished_clip, strip_times, write_still
from vigint.incidents.storage import StorageError
from vigint.incidents.writes import persist
from vigint.media import MICROSECONDS
from vigint.store import Incident, Node, Store
from vigint.tasks import every

log = logging.getLogger(__name__)

SILENT_FLUSHES = 3  # usage flushes a node may miss (a busy database) before it counts as dead


# Nodes of this process started after this; a node with this process's id that started before was its
# predecessor (a container restarted gives its server the same id), which is dead.
PROCESS_STARTED = time.time()


def process_runs(pid: int, started_at: float) -> bool:
    """Return whether the node of this host with process id `pid`, started at `started_at`, may run."""
    if pid == os.getpid():
        return started_at >= PROCESS_STARTED
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def node_of(run: str) -> str:
    """Return the id of the node (`host:port`) that `run` (`<node id>/<random>`) is a run of."""
    return run.rpartition("/")[0]


def dead(run: str, node: Node | None, node_id: str, now: float, silence: float,
         runs: Callable[[int, float], bool] = process_runs) -> bool:
    """Return whether `run`, a run of a node whose latest snapshot is `node` (None: it has none, or not
    lately), is dead, as seen by node `node_id` of this host: an earlier run of `node_id`, or a run of a node
    stopped, silent for `silence` seconds, or of this host with its process gone."""
    owner = node_of(run)
    if owner == node_id or node is None or node.stopped_at is not None or now - node.seen_at >= silence:
        return True
    pid = node.document.get("pid")
    same_host = owner.rpartition(":")[0] == node_id.rpartition(":")[0]
    return same_host and isinstance(pid, int) and not runs(pid, node.started_at)


class Recovery:
    """Finishes what dead nodes left (see the module's docstring); `run` until the server stops."""

    def __init__(self, context: ClipContext, store: Store, wake_sender: Callable[[], None], node_id: str):
        """`wake_sender()` makes the alert sender look at the outbox (alerts were released); `node_id` is this
        server's (`host:port`), and `run` the name of this run of it, which the incidents it records bear."""
        self._context = context
        self._store = store
        self._wake_sender = wake_sender
        self._node_id = node_id
        self.run_id = f"{node_id}/{secrets.token_hex(4)}"
        self._silence = SILENT_FLUSHES * context.settings.server.usage_flush_seconds

    async def run(self, stopping: asyncio.Event) -> None:
        """Recover now, then every `_silence` seconds, until `stopping`."""
        await every(self._silence, stopping, self.recover, log, "could not recover incidents of dead nodes")

    async def recover(self) -> list[int]:
        """Finish every incident a dead node left; return their ids."""
        recovered = []
        incidents = await self._store.unrecorded_incidents(self.run_id)
        nodes = {node.id: node for node in await self._store.nodes()} if incidents else {}
        for incident in incidents:
            run = incident.recording_node
            if not dead(run, nodes.get(node_of(run)), self._node_id, time.time(), self._silence):
                continue
            if not await self._store.take_incident(incident.id, self.run_id, run):
                continue  # another node took it first
            try:
                await self._finish(incident)
            # one incident's failure must not leave the others: retried at restart
            except Exception:  # noqa: BLE001
                log.exception("incident %d: could not finish what node %s left", incident.id,
                              incident.recording_node)
                continue
            recovered.append(incident.id)
        return recovered

    async def _finish(self, incident: Incident) -> None:
        """Close an incident at its last recorded footage, finish its clip and stills, release its alerts."""
        what = f"incident {incident.id}"
        name = incident.clip_path or f"clips/{incident.client_id}/{incident.id}.mp4"
        growing = self._context.storage.growing(name)
        # The clip's time 0: recorded as it began; else (an older row) its pre-roll before the motion.
        clip_from = incident.clip_from
        if clip_from is None:
            clip_from = incident.started_at - self._context.settings.motion.pre_roll_seconds
        held = await self._run(self._footage, growing)
        ended_at = incident.ended_at
        if ended_at is None:
            ended_at = max(incident.started_at, clip_from + held) if held else incident.started_at
            # a camera back may extend it
            await persist(what, lambda: self._store.extend_incident(incident.id, ended_at))
        finished = held is not None and await self._finish_clip(incident, name, growing, clip_from, ended_at)
        released = await persist(what,
                                 lambda: self._store.incident_recorded(incident.id, self.run_id, time.time()))
        if released:
            self._wake_sender()
        log.warning("incident %d, left by node %s: closed, clip %s, %d alert(s) released", incident.id,
                    incident.recording_node or "(unknown)", "finished" if finished else "as it was", released)

    async def _run(self, job: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self._context.pool, job, *args)

    @staticmethod
    def _footage(growing: Path) -> float | None:
        """Return how many seconds of footage the clip growing at `growing` holds; None if there is none
        here."""
        if not growing.is_file():
            return None
        try:
            return clips.footage_end(growing)
        except (OSError, clips.ClipError) as error:
            log.error("%s: unreadable: %s", growing, error)
            return None

    async def _finish_clip(self, incident: Incident, name: str, growing: Path, clip_from: float,
                           ended_at: float) -> bool:
        """Finish the incident's clip (to the post-roll after its end) and store its strip of stills; return
        whether it was finished. If it cannot be (logged), it stays as it grew."""
        context = self._context
        post = self._context.settings.motion.post_roll_seconds
        until = round((ended_at + post - clip_from) * clips.MP4_TIME_BASE.denominator)
        base = round(clip_from * MICROSECONDS)
        start = round(incident.started_at * MICROSECONDS)
        strip = strip_times(start, round(ended_at * MICROSECONDS), base, incident.stills)
        make = partial(finished_clip, context, growing, until=until, strip=strip)
        try:
            _, jpegs = await self._run(context.storage.finish, name, make)
        except (NoRoom, OSError, clips.ClipError, StorageError) as error:
            log.error("%s: not finished, kept as it grew: %s", name, error)
            return False
        stills = incident.stills
        for jpeg in jpegs:
            try:
                await self._run(write_still, context, incident.client_id, incident.id, stills, jpeg)
            except (OSError, StorageError) as error:
                log.error("incident %d: cannot write still %d: %s", incident.id, stills, error)
                break
            stills += 1
        await persist(f"incident {incident.id}",
                      lambda: self._store.update_incident(incident.id, clip_path=name, stills=stills))
        return True
