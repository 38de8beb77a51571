"""Alerts given up: an outbox row that will never be attempted again, kept with the reason it died.

A dead letter stays in the outbox, undelivered, so its incident is never counted as alerted by that channel;
its next attempt is set to +infinity (no claim ever reaches it) and its incident's alert state becomes `dead`.
The sender raises an `undeliverable` flag beside it, which `vigint alerts` lists and the fleet monitor emails
to the operator once.
"""

from vigint.store.engine import Engine
from vigint.store.records import Alert, AlertState

NEVER = float("inf")  # the next attempt of a dead letter: every claim compares it with now, and none comes


class DeadLetterQueries(Engine):
    """Giving an alert up."""

    async def alert_dead(self, alert: Alert, reason: str, now: float) -> None:
        """Record an alert's last failed attempt and that none follows; mark its incident's alerts dead."""
        async with self._transaction() as db:
            await db.execute("UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?, "
                             "next_attempt_at = ? WHERE id = ? AND delivered_at IS NULL",
                             (reason[:500], NEVER, alert.id))
            await db.execute("UPDATE incidents SET alert_state = ? WHERE id = ?",
                             (AlertState.DEAD, alert.incident.id))
