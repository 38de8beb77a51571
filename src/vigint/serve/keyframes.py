"""The customers' page's view of this node's streams for a camera's still (`web.stills.Keyframes`): the page
may not import the ingest side that holds the rings, so the composition root lends it this reader."""

from vigint.ingest.streams import Streams
from vigint.media import Packet


class RingKeyframes:
    """Finds a live stream's newest keyframe in its ring. Event loop only."""

    def __init__(self, streams: Streams):
        self._streams = streams

    async def keyframe(self, client_id: int, camera: str) -> Packet | None:
        """Return the newest keyframe the client's camera's live stream on this node holds, if any."""
        session = self._streams.of_client(client_id).get(camera)
        if session is None:
            return None
        return next((packet for packet in reversed(session.packets()) if packet.keyframe), None)
