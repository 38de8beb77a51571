"""What the server received of each camera's footage, so that footage sent twice is never taken twice.

A live stream's row holds the capture times (µs) of the first and newest media it received: an agent that
sends some of that footage again as backfill (a GOP its spool still held when it stopped) has it acknowledged
at once, neither analysed nor billed again, whichever node it reaches. Footage resent for an incident whose
alert went out may add nothing to its evidence: when it differs, the refusal is audited here (and flagged, see
`fleet`).
"""

from dataclasses import dataclass

from vigint.store.audit import record_audit
from vigint.store.engine import Engine

# A spool holds hours of footage at most (2 GB by default); a week of live spans covers any backfill of it.
KEEP_LIVE_FOOTAGE_US = 7 * 86400 * 1_000_000


@dataclass(frozen=True)
class LiveSpan:
    """The capture times (µs) of the first and newest media one live stream received."""

    session: str
    client_id: int
    camera: str
    first_us: int
    last_us: int


class FootageQueries(Engine):
    """Live footage received, and resent footage refused."""

    async def save_live_footage(self, spans: list[LiveSpan], ended: list[LiveSpan]) -> None:
        """Record (or move on) the spans of live streams; the cameras of those `ended` lose their spans older
        than a week."""
        if not spans:
            return
        async with self._transaction() as db:
            await db.executemany(
                """INSERT INTO live_footage (session, client_id, camera, first_us, last_us)
                   SELECT ?1, id, ?2, ?3, ?4 FROM clients WHERE id = ?5
                   ON CONFLICT (session) DO UPDATE SET last_us = excluded.last_us""",
                [(span.session, span.camera, span.first_us, span.last_us, span.client_id) for span in spans])
            stale = sorted({(span.client_id, span.camera, span.last_us - KEEP_LIVE_FOOTAGE_US)
                            for span in ended})
            await db.executemany(
                "DELETE FROM live_footage WHERE client_id = ? AND camera = ? AND last_us < ?", stale)

    async def live_footage(self, client_id: int, camera: str) -> list[tuple[int, int]]:
        """Return the (first, last) capture times (µs) of the camera's live streams, oldest first."""
        rows = await self._fetch_all(
            "SELECT first_us, last_us FROM live_footage WHERE client_id = ? AND camera = ? "
            "ORDER BY first_us", (client_id, camera))
        return [(row["first_us"], row["last_us"]) for row in rows]

    async def footage_refused(self, client_id: int, key_id: int, incident_id: int, detail: str,
                              now: float) -> None:
        """Audit footage refused because it differs from the evidence of an incident already alerted."""
        async with self._transaction() as db:
            await record_audit(db, now, "footage.refused", client_id, key_id,
                               f"incident={incident_id} {detail}")
