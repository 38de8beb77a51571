"""This node's live views (see livefeed.py): who watches which camera, within the viewer caps, and who must
stop.

Every `check_seconds` (the streams' revocation period, so within 1 s): a viewer whose stream ended is ended,
one that stopped reading (its oldest queued fragment too old) is dropped, one whose session's time is up is
signed out, and when the database changed (`Store.data_version`: a revocation, a deletion, a sign-out, by
any node) each viewer's session is looked up again, ending those whose client is no longer signed in. A feed
whose last viewer left is kept KEEP_SECONDS, muxing as packets come, so that a viewer coming back (a reload,
a socket opened and closed in a loop) starts from its kept fragments instead of a remux of the whole GOP.
"""

import asyncio
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from vigint.config import WebSettings
from vigint.store import Store
from vigint.tasks import every
from vigint.web.livefeed import Feed, Sources, Viewer

log = logging.getLogger(__name__)

# Muxing a frame takes tens of microseconds: two threads keep one slow batch from delaying every camera.
LIVE_THREADS = 2
KEEP_SECONDS = 5.0


class LiveViews:
    """The node's feeds and their viewers. Event loop only."""

    def __init__(self, sources: Sources, store: Store, settings: WebSettings, check_seconds: float):
        self._sources = sources
        self._store = store
        self._settings = settings
        self._check_seconds = check_seconds
        self._feeds: dict[tuple[int, str], Feed] = {}
        self._pool = ThreadPoolExecutor(LIVE_THREADS, thread_name_prefix="live")
        self._version: int | None = None
        self.seconds: Counter[int] = Counter()  # viewing time not yet counted in usage, by stream key
        self._counted_at = time.monotonic()

    @property
    def viewers(self) -> int:
        """How many viewers this node serves now."""
        return sum(len(feed.viewers) for feed in self._feeds.values())

    def streaming(self, client_id: int, camera: str) -> bool:
        """Whether the client's camera streams to this node."""
        return self._sources.find(client_id, camera) is not None

    def refusal(self, client_id: int) -> str | None:
        """Return why one more viewer of this client is refused ("client", "node"), or None if it may
        watch."""
        if self.viewers >= self._settings.max_live_viewers:
            return "node"
        mine = sum(viewer.client_id == client_id for feed in self._feeds.values() for viewer in feed.viewers)
        if mine >= self._settings.max_live_viewers_per_client:
            return "client"
        return None

    def join(self, client_id: int, camera: str, session: str, expires_at: float) -> Viewer | None:
        """Add a viewer of the client's camera, signed in as `session` (its stored hash) until `expires_at`
        (wall clock); None if it does not stream to this node. The caller checked `refusal` just before, with
        no await between."""
        source = self._sources.find(client_id, camera)
        if source is None:
            return None
        key = (client_id, camera)
        feed = self._feeds.get(key)
        if feed is not None and (feed.source != source or feed.stale):  # a new stream or picture: a new feed
            self._end_feed(key, "stream ended")
            feed = None
        self._count(time.monotonic())  # the time before it came is not its
        if feed is None:
            feed = self._feeds[key] = Feed(source, camera, self._pool)
            feed.open()
        viewer = Viewer(client_id, camera, session, self._settings.max_live_queue_bytes,
                        self._settings.max_live_queue_seconds, expires_at)
        feed.idle_since = None
        feed.add(viewer)
        return viewer

    def leave(self, viewer: Viewer) -> None:
        """Forget a viewer whose socket closed; its camera's feed stops KEEP_SECONDS after its last viewer."""
        key = (viewer.client_id, viewer.camera)
        feed = self._feeds.get(key)
        viewer.end(viewer.ended or "left")
        if feed is None or viewer not in feed.viewers:
            return
        self._count(time.monotonic())
        feed.viewers.discard(viewer)
        if not feed.viewers:
            feed.idle_since = time.monotonic()

    def _end_feed(self, key: tuple[int, str], reason: str) -> None:
        self._count(time.monotonic())  # its viewers' time until now is theirs
        feed = self._feeds.pop(key)
        for viewer in feed.viewers:
            viewer.end(reason)
        feed.close()

    def _count(self, now: float) -> None:
        """Add the time watched since the last count to each watched stream's key."""
        elapsed = now - self._counted_at
        self._counted_at = now
        for feed in self._feeds.values():
            if feed.viewers:
                self.seconds[feed.source.key_id] += elapsed * len(feed.viewers)

    def take_seconds(self) -> Counter[int]:
        """Return the viewing seconds by stream key since the last call, for usage."""
        self._count(time.monotonic())
        taken = self.seconds
        self.seconds = Counter()
        return taken

    async def check(self) -> None:
        """End the viewers no longer signed in (looked up only when the database changed), those of ended
        streams (or changed pictures) and those that stopped reading; stop the feeds left KEEP_SECONDS ago.
        Sessions go first: a revocation also ends the client's streams, and its viewers are told they were
        signed out, not that the stream ended (which would have their page wait for it to come back)."""
        latest = await self._store.data_version()
        if latest != self._version:
            self._version = latest
            for viewer in [viewer for feed in self._feeds.values() for viewer in feed.viewers if not viewer.ended]:
                client = await self._store.session_client(viewer.session, time.time())
                if client is None or client.id != viewer.client_id:
                    viewer.end("signed out")
        now = time.monotonic()
        wall = time.time()
        for key, feed in list(self._feeds.items()):
            if feed.source.ended or feed.stale:
                self._end_feed(key, "stream ended")
                continue
            if feed.idle_since is not None and now - feed.idle_since > KEEP_SECONDS:
                self._end_feed(key, "left")
                continue
            for viewer in feed.viewers:
                if viewer.lagging(now):
                    viewer.end("too slow")
                elif wall >= viewer.expires_at:
                    viewer.end("signed out")

    async def run(self, stopping: asyncio.Event) -> None:
        """Check every `check_seconds` until `stopping`."""
        await every(self._check_seconds, stopping, self.check, log,
                    "could not check live viewers; will retry")

    def close(self) -> None:
        """End every viewer and let the muxers go."""
        for key in list(self._feeds):
            self._end_feed(key, "server shutting down")
        self._pool.shutdown(wait=False)
