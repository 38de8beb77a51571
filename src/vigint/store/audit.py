"""The audit trail: one row per admin action, written inside the action's own transaction."""

from datetime import datetime, timezone

from vigint.store.engine import Engine, Transaction
from vigint.store.records import AuditEntry


async def record_audit(db: Transaction, now: float, action: str, client_id: int | None,
                       key_id: int | None = None, detail: str = "") -> None:
    """Add an audit row on `db`, the caller's open transaction, so the action and its trail commit
    together."""
    await db.execute("INSERT INTO audit_log (at, action, client_id, key_id, detail) VALUES (?, ?, ?, ?, ?)",
                     (now, action, client_id, key_id, detail))


def audit_time(timestamp: float) -> str:
    """A time as audit details write it: ISO 8601 UTC to the second, as the commands' JSON does."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class AuditQueries(Engine):
    """Reading the audit trail."""

    async def list_audit(self, client_id: int | None = None, since: float | None = None,
                         limit: int = 1000) -> list[AuditEntry]:
        """Return admin actions, newest first, optionally for one client (deleted ones included) and since a
        time."""
        rows = await self._fetch_all(
            "SELECT * FROM audit_log WHERE (client_id = ?1 OR ?1 IS NULL) AND (at >= ?2 OR ?2 IS NULL) "
            "ORDER BY id DESC LIMIT ?3", (client_id, since, limit))
        return [AuditEntry(**dict(row)) for row in rows]

    async def reactivations(self) -> dict[int, float]:
        """Return when each client was last reactivated (clients never reactivated are absent)."""
        rows = await self._fetch_all(
            "SELECT client_id, max(at) AS at FROM audit_log WHERE action = 'client.reactivate' "
            "GROUP BY client_id")
        return {row["client_id"]: row["at"] for row in rows}
