"""Several nodes, one service: the registry of open streams, the nodes' snapshots, and leases on shared jobs.

Every rule that holds on one node holds across nodes because it is decided here, in one transaction: a
camera name is unique per client and the per-client limit counts the streams of every node. A node renews
the leases of its streams; when it dies they expire and the names are free again. Jobs that must run once
for the whole service (fleet checks, retention) run on whichever node holds their lease.
"""

import json

from vigint.store.engine import Engine
from vigint.store.records import Claim, Node, StreamEntry

# a node that went silent (crashed) a day ago is gone from `vigint status`
FORGET_NODES_AFTER_SECONDS = 86400.0
FORGET_STOPPED_NODES_AFTER_SECONDS = 3600.0  # one stopped cleanly an hour ago too: a port no longer served


class NodeQueries(Engine):
    """The stream registry, node snapshots and job leases."""

    async def claim_stream(self, entry: StreamEntry, most: int, lease_until: float, now: float) -> Claim:
        """Register an open stream under its camera name, unless the name is taken or the client is at `most`
        streams; expired entries (of dead nodes) are dropped first."""
        async with self._transaction() as db:
            # two nodes claiming for one client take turns
            await db.serialize(f"streams of client {entry.client_id}")
            await db.execute("DELETE FROM live_streams WHERE client_id = ? AND lease_until < ?",
                             (entry.client_id, now))
            cameras = {row["camera"] for row in await db.fetch_all(
                "SELECT camera FROM live_streams WHERE client_id = ?", (entry.client_id,))}
            if entry.camera in cameras:
                return Claim.TAKEN
            if len(cameras) >= most:
                return Claim.OVER_LIMIT
            await db.execute(
                "INSERT INTO live_streams (client_id, camera, key_id, node_id, session_id, address, since, "
                "lease_until, spooled_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.client_id, entry.camera, entry.key_id, entry.node_id, entry.session_id, entry.address,
                 entry.since, lease_until, entry.spooled_seconds))
        return Claim.CLAIMED

    async def release_stream(self, client_id: int, camera: str, session_id: str) -> None:
        """Free a stream's camera name (only its own entry: a later stream of the camera may hold it now)."""
        async with self._transaction() as db:
            await db.execute("DELETE FROM live_streams WHERE client_id = ? AND camera = ? AND session_id = ?",
                             (client_id, camera, session_id))

    async def renew_streams(self, node_id: str, session_ids: set[str], lease_until: float) -> set[str]:
        """Extend the leases of a node's open streams; return those still registered (a stream missing from
        them lost its name: its lease ran out). Entries of the node's other streams are left to expire: a
        release that failed, or a claim still in flight, which must not be mistaken for one."""
        if not session_ids:
            return set()
        marks = ", ".join("?" * len(session_ids))
        async with self._transaction() as db:
            rows = await db.fetch_all(f"UPDATE live_streams SET lease_until = ? WHERE node_id = ? "
                                      f"AND session_id IN ({marks}) RETURNING session_id",
                                      (lease_until, node_id, *sorted(session_ids)))
        return {row["session_id"] for row in rows}

    async def registered_streams(self, now: float) -> list[StreamEntry]:
        """Return the open streams of every live node."""
        rows = await self._fetch_all(
            "SELECT client_id, camera, key_id, node_id, session_id, address, since, spooled_seconds "
            "FROM live_streams WHERE lease_until >= ? ORDER BY client_id, camera", (now,))
        return [StreamEntry(**dict(row)) for row in rows]

    async def stream_node(self, client_id: int, camera: str, now: float) -> Node | None:
        """Return the node a client's camera streams to now, if any: one lookup by the registry's key."""
        row = await self._fetch_one(
            "SELECT n.* FROM live_streams s JOIN nodes n ON n.id = s.node_id "
            "WHERE s.client_id = ? AND s.camera = ? AND s.lease_until >= ?", (client_id, camera, now))
        return None if row is None else _node(row)

    async def save_node(self, node_id: str, started_at: float, document: dict, now: float,
                        stopped: bool = False) -> None:
        """Record a node's snapshot (its heartbeat); a stopped node also gives up its streams and leases. A
        node restarted under the same id (host and port) is the same node, started again."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO nodes (id, started_at, seen_at, stopped_at, document) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, "
                "seen_at = excluded.seen_at, stopped_at = excluded.stopped_at, document = excluded.document",
                (node_id, started_at, now, now if stopped else None, json.dumps(document)))
            await db.execute("DELETE FROM nodes WHERE seen_at < ? OR stopped_at < ?",
                             (now - FORGET_NODES_AFTER_SECONDS, now - FORGET_STOPPED_NODES_AFTER_SECONDS))
            if stopped:
                await db.execute("DELETE FROM live_streams WHERE node_id = ?", (node_id,))
                await db.execute("DELETE FROM leases WHERE holder = ?", (node_id,))

    async def nodes(self) -> list[Node]:
        """Return the nodes seen in the last day (stopped ones: in the last hour), most recently started
        first."""
        rows = await self._fetch_all("SELECT * FROM nodes ORDER BY started_at DESC, id")
        return [_node(row) for row in rows]

    async def hold_lease(self, name: str, node_id: str, until: float, now: float) -> bool:
        """Take or keep the lease on a shared job until `until`; return whether this node holds it."""
        async with self._transaction() as db:
            return await db.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET holder = excluded.holder, until = excluded.until "
                "WHERE leases.holder = excluded.holder OR leases.until < ?", (name, node_id, until, now)) == 1


def _node(row) -> Node:
    return Node(**{**dict(row), "document": json.loads(row["document"])})
