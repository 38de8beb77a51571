"""Usage: the meter's hourly counters added up per key, and the reports read from them."""

from vigint.store.engine import Engine
from vigint.store.records import UsageDelta, UsageRow


class UsageQueries(Engine):
    """Usage per key in hourly buckets."""

    async def record_usage(self, deltas: list[UsageDelta], last_used: dict[int, float]) -> None:
        """Add usage deltas to their hourly buckets and move keys' last-used times, in one transaction.

        Keys deleted meanwhile are skipped: their usage went with their client.
        """
        # In key order, as every node writes them: two nodes' flushes never wait for each other in a circle.
        ordered = sorted(deltas, key=lambda d: (d.key_id, d.bucket_start))
        async with self._transaction() as db:
            await db.executemany(
                """INSERT INTO usage (key_id, bucket_start, stream_seconds, bytes_received, frames_decoded,
                                      ai_calls, ai_tokens, alerts_sent, backfill_bytes, backfill_seconds,
                                      live_view_seconds)
                   SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 FROM api_keys WHERE id = ?1
                   ON CONFLICT (key_id, bucket_start) DO UPDATE SET
                       stream_seconds = usage.stream_seconds + excluded.stream_seconds,
                       bytes_received = usage.bytes_received + excluded.bytes_received,
                       frames_decoded = usage.frames_decoded + excluded.frames_decoded,
                       ai_calls = usage.ai_calls + excluded.ai_calls,
                       ai_tokens = usage.ai_tokens + excluded.ai_tokens,
                       alerts_sent = usage.alerts_sent + excluded.alerts_sent,
                       backfill_bytes = usage.backfill_bytes + excluded.backfill_bytes,
                       backfill_seconds = usage.backfill_seconds + excluded.backfill_seconds,
                       live_view_seconds = usage.live_view_seconds + excluded.live_view_seconds""",
                [(d.key_id, d.bucket_start, d.stream_seconds, d.bytes_received, d.frames_decoded, d.ai_calls,
                  d.ai_tokens, d.alerts_sent, d.backfill_bytes, d.backfill_seconds, d.live_view_seconds)
                 for d in ordered])
            await db.executemany(
                "UPDATE api_keys SET last_used_at = ?1 "
                "WHERE id = ?2 AND (last_used_at < ?1 OR last_used_at IS NULL)",
                [(at, key_id) for key_id, at in sorted(last_used.items())])

    async def usage_report(self, client_id: int | None, since: float | None,
                           until: float | None) -> list[UsageRow]:
        """Return usage per key within [since, until) (hour buckets), with the key's client, by client then
        key."""
        rows = await self._fetch_all(
            """SELECT c.id AS client_id, c.name AS client_name, k.id AS key_id, k.prefix AS key_prefix,
                      sum(u.stream_seconds) AS stream_seconds, sum(u.bytes_received) AS bytes_received,
                      sum(u.frames_decoded) AS frames_decoded, sum(u.ai_calls) AS ai_calls,
                      sum(u.ai_tokens) AS ai_tokens, sum(u.alerts_sent) AS alerts_sent,
                      sum(u.backfill_bytes) AS backfill_bytes, sum(u.backfill_seconds) AS backfill_seconds,
                      sum(u.live_view_seconds) AS live_view_seconds,
                      (SELECT count(*) FROM incidents i
                         WHERE i.key_id = k.id AND (i.started_at >= ?2 OR ?2 IS NULL)
                           AND (i.started_at < ?3 OR ?3 IS NULL)) AS incidents
               FROM usage u JOIN api_keys k ON k.id = u.key_id JOIN clients c ON c.id = k.client_id
               WHERE (c.id = ?1 OR ?1 IS NULL) AND (u.bucket_start >= ?2 OR ?2 IS NULL)
                 AND (u.bucket_start < ?3 OR ?3 IS NULL)
               GROUP BY c.id, k.id ORDER BY c.id, k.id""", (client_id, since, until))
        counts = ("bytes_received", "frames_decoded", "ai_calls", "ai_tokens", "alerts_sent", "incidents",
                  "backfill_bytes")
        return [UsageRow(**{**dict(row), **{name: int(row[name]) for name in counts}}) for row in rows]

    async def hourly_bytes(self, key_id: int, since: float) -> list[int]:
        """Return a key's bytes received per hourly bucket since `since`, oldest first."""
        rows = await self._fetch_all(
            "SELECT bytes_received FROM usage WHERE key_id = ? AND bucket_start >= ? ORDER BY bucket_start",
            (key_id, since))
        return [row["bytes_received"] for row in rows]
