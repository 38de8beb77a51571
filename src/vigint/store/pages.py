"""A client's own page: what the signed-in customer sees, and the sign-in links and sessions that let it in.

Every read takes the client's id and returns only that client's rows: a customer's page cannot name another
client's incident, clip, still or invoice, whatever id its URL holds. Links and sessions are kept as SHA-256
hashes of their tokens: the database never holds one that works.
"""

from dataclasses import dataclass

from vigint.store.engine import Engine
from vigint.store.incidents import REVIEWED_AS, _incident, _review_filter
from vigint.store.invoices import _invoice
from vigint.store.records import CameraRecord, Client, Incident, Invoice


@dataclass(frozen=True)
class Listed:
    """An incident as the customer's list shows it: with its alerts delivered, by channel."""

    incident: Incident
    emailed: bool
    webhooked: bool


class PageQueries(Engine):
    """Sign-in links, sessions, and one client's incidents, cameras and invoices."""

    async def add_sign_in_link(self, client_id: int, token_hash: str, now: float, expires_at: float) -> None:
        """Record a one-time sign-in link."""
        async with self._transaction() as db:
            await db.execute("DELETE FROM sign_in_links WHERE expires_at < ?", (now,))  # the dead, on the way
            await db.execute("INSERT INTO sign_in_links (token_hash, client_id, created_at, expires_at) "
                             "VALUES (?, ?, ?, ?)", (token_hash, client_id, now, expires_at))

    async def use_sign_in_link(self, token_hash: str, now: float) -> int | None:
        """Spend a sign-in link: return its client's id if it was unused, unexpired and its client is active,
        else None. A link is spent once, even by two requests at the same instant."""
        async with self._transaction() as db:
            rows = await db.fetch_all(
                """UPDATE sign_in_links SET used_at = ?2
                   WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                     AND client_id IN (SELECT id FROM clients WHERE status = 'active') RETURNING client_id""",
                (token_hash, now))
        return rows[0]["client_id"] if rows else None

    async def add_session(self, client_id: int, token_hash: str, now: float, expires_at: float) -> None:
        """Record a signed-in browser."""
        async with self._transaction() as db:
            await db.execute("DELETE FROM web_sessions WHERE expires_at < ?", (now,))
            await db.execute("INSERT INTO web_sessions (token_hash, client_id, created_at, expires_at) "
                             "VALUES (?, ?, ?, ?)", (token_hash, client_id, now, expires_at))

    async def session_client(self, token_hash: str, now: float) -> Client | None:
        """Return the client a browser is signed in as: None if the session is unknown, ended or expired, or
        its client revoked."""
        row = await self._fetch_one(
            """SELECT c.* FROM web_sessions s JOIN clients c ON c.id = s.client_id
               WHERE s.token_hash = ? AND s.expires_at > ? AND c.status = 'active'""", (token_hash, now))
        return None if row is None else Client(**dict(row))

    async def session_expiry(self, token_hash: str) -> float | None:
        """Return when a browser's session ends (its live views end then), None if it is unknown or ended."""
        row = await self._fetch_one("SELECT expires_at FROM web_sessions WHERE token_hash = ?", (token_hash,))
        return None if row is None else row["expires_at"]

    async def end_session(self, token_hash: str) -> None:
        """Sign a browser out; every node's live views look their sessions up again (the keys' notice)."""
        async with self._transaction() as db:
            await db.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))
            await db.notify_keys_changed()

    async def client_by_email(self, email: str) -> Client | None:
        """Return the active client with this email address (whatever its case), if any."""
        row = await self._fetch_one(
            "SELECT * FROM clients WHERE lower(email) = lower(?) AND status = 'active'", (email,))
        return None if row is None else Client(**dict(row))

    async def client_incidents(self, client_id: int, camera: str | None, since: float | None,
                               until: float | None, offset: int, limit: int,
                               review: str | None = None) -> list[Listed]:
        """Return a client's incidents, newest first, of one camera, within [since, until) and with a review
        (see `list_incidents`) if given. Raises InvalidInputError: an unknown review filter."""
        rows = await self._fetch_all(
            """SELECT i.*,
                      EXISTS (SELECT 1 FROM alert_outbox o WHERE o.incident_id = i.id
                                AND o.channel = 'email' AND o.delivered_at IS NOT NULL) AS emailed,
                      EXISTS (SELECT 1 FROM alert_outbox o WHERE o.incident_id = i.id
                                AND o.channel = 'webhook' AND o.delivered_at IS NOT NULL) AS webhooked
               FROM incidents i WHERE i.client_id = ?1 AND (i.camera = ?2 OR ?2 IS NULL)
                 AND (i.started_at >= ?3 OR ?3 IS NULL) AND (i.started_at < ?4 OR ?4 IS NULL)
                 AND {reviewed}
               ORDER BY i.started_at DESC, i.id DESC LIMIT ?5 OFFSET ?6""".format(
                reviewed=REVIEWED_AS.format(table="i", filter="?7")),
            (client_id, camera, since, until, limit, offset, _review_filter(review)))
        listed = []
        for row in rows:
            values = dict(row)
            emailed = bool(values.pop("emailed"))
            webhooked = bool(values.pop("webhooked"))
            listed.append(Listed(_incident(values), emailed, webhooked))
        return listed

    async def client_incident(self, client_id: int, incident_id: int) -> Incident | None:
        """Return one of a client's incidents; None if there is none with this id, or it is another
        client's."""
        row = await self._fetch_one("SELECT * FROM incidents WHERE id = ? AND client_id = ?",
                                    (incident_id, client_id))
        return None if row is None else _incident(row)

    async def client_cameras(self, client_id: int) -> list[CameraRecord]:
        """Return a client's cameras that ever streamed, by name."""
        rows = await self._fetch_all("SELECT * FROM cameras WHERE client_id = ? ORDER BY camera",
                                     (client_id,))
        return [CameraRecord(**dict(row)) for row in rows]

    async def client_camera_names(self, client_id: int) -> list[str]:
        """Return the names of a client's cameras that streamed or had an incident, sorted."""
        rows = await self._fetch_all("SELECT camera FROM cameras WHERE client_id = ?1 "
                                     "UNION SELECT camera FROM incidents WHERE client_id = ?1", (client_id,))
        return sorted(row["camera"] for row in rows)

    async def client_invoices(self, client_id: int) -> list[Invoice]:
        """Return the invoices issued to a client, newest first."""
        rows = await self._fetch_all("SELECT * FROM invoices WHERE client_id = ? ORDER BY number DESC",
                                     (client_id,))
        return [_invoice(row) for row in rows]

    async def client_invoice(self, client_id: int, number: int) -> Invoice | None:
        """Return one of a client's invoices; None if there is none with this number, or it is another
        client's."""
        row = await self._fetch_one("SELECT * FROM invoices WHERE number = ? AND client_id = ?",
                                    (number, client_id))
        return None if row is None else _invoice(row)
