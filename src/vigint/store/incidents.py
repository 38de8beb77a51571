"""Incidents and the alert outbox: an incident row and one held outbox row per alert channel, in one
transaction; then its clip and verdict, which release its alerts (or suppress them); the sender delivers
released rows and retries them until done. A row names the run of the node recording it until it is recorded
whole, so that a live node can finish what a dead one left (`incidents.recovery`).
"""

import unicodedata

from vigint.errors import InvalidInputError, NotFoundError, StoreError
from vigint.store.audit import record_audit
from vigint.store.engine import Engine, Row
from vigint.store.records import Alert, AlertState, Channel, Incident, Review, ReviewMark, Verdict

# An incident still open this long after its start is taken as left by a node that died, not continued.
OPEN_CONTINUES_SECONDS = 3600.0
# Incident columns that hold a domain state: this version writes only one of their enum's values.
_STATES = {"verdict": Verdict, "alert_state": AlertState}
# A review's note says why in a sentence or two ("the neighbour's cat"); a page's form is no place for an
# essay.
MAX_REVIEW_NOTE = 280
# What the incident lists filter by: a review's mark, or none yet.
UNREVIEWED = "unreviewed"
REVIEW_FILTERS = (UNREVIEWED, *ReviewMark)
_REVIEW_COLUMNS = ("review", "review_note", "reviewed_at", "reviewed_by")
# The WHERE clause of a review filter on `table`'s rows, its value the parameter `filter` (NULL: every
# incident).
# (Cast: PostgreSQL cannot tell a parameter's type from `IS NULL` alone.)
REVIEWED_AS = ("(CAST({filter} AS TEXT) IS NULL OR {table}.review = {filter} OR {filter} = 'unreviewed' AND "
               "{table}.review IS NULL)")
# Releases an incident's held alerts, due at the first parameter.
_RELEASE_HELD = "UPDATE alert_outbox SET held = 0, next_attempt_at = ? WHERE incident_id = ? AND held = 1"
# The columns of a claimed alert's row that are not its incident's.
_ALERT_HEAD = ("outbox_id", "channel", "attempts", "client_name", "client_email", "client_timezone",
               "client_language")


def _incident(row: Row) -> Incident:
    """Return an incident row as a record. Raises StoreError, in one line, for a state this version does not
    know (written by another version sharing the database)."""
    values = dict(row)
    values["offline"] = bool(values.get("offline"))
    mark, note, at, by = (values.pop(name, None) for name in _REVIEW_COLUMNS)
    values["review"] = None if mark is None else Review(ReviewMark(mark), note or "", at, by)
    for name, state in _STATES.items():
        try:
            values[name] = state(values[name])
        except ValueError:
            raise StoreError(f"incident {values['id']} has the {name} {values[name]!r}, unknown to this "
                             "version of vigint: was it written by a newer one?") from None
    return Incident(**values)


def check_note(note: str) -> str:
    """Return a review's note with its outer spaces stripped and its line ends as "\n".

    Raises:
        InvalidInputError: longer than MAX_REVIEW_NOTE characters, or holding a control character (other than
            a line break or a tab).
    """
    note = note.replace("\r\n", "\n").strip()
    if len(note) > MAX_REVIEW_NOTE:
        raise InvalidInputError(f"a note is at most {MAX_REVIEW_NOTE} characters "
                                f"(this one has {len(note):,})")
    if any(c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cs", "Co") for c in note):
        raise InvalidInputError("a note cannot hold control characters")
    return note


def _review_filter(review: str | None) -> str | None:
    """Return a list's review filter as given, or None for every incident. Raises InvalidInputError."""
    if review is not None and review not in REVIEW_FILTERS:
        raise InvalidInputError(f"unknown review filter {review!r:.40}: {', '.join(REVIEW_FILTERS)}")
    return review


def _channels(channels: list[str]) -> list[Channel]:
    """Return `channels` as Channels. Raises ValueError naming the unknown ones."""
    unknown = [channel for channel in channels if channel not in set(Channel)]
    if unknown:
        named = ", ".join(map(repr, unknown))
        raise ValueError(f"unknown alert channel(s) {named}: expected {', '.join(Channel)}")
    return [Channel(channel) for channel in channels]


class IncidentQueries(Engine):
    """Incidents, camera events and the alert outbox."""

    async def create_incident(self, client_id: int, key_id: int, camera: str, started_at: float,
                              offline: bool = False, recorder: str | None = None,
                              channels: list[Channel] | None = None) -> Incident:
        """Record a new motion incident (`offline`: found in footage recorded while the camera was offline);
        its clip and verdict come later. `recorder` names the node's run recording it (see
        `incident_recorded`); with `channels`, one alert per channel is queued in the same transaction, held
        until `judge_incident` or `incident_recorded` releases it: a crash at any instant loses no alert.

        Raises:
            ValueError: a channel is unknown; nothing is recorded.
        """
        channels = None if channels is None else _channels(channels)
        async with self._transaction() as db:
            (row,) = await db.fetch_all(
                "INSERT INTO incidents (client_id, key_id, camera, started_at, type, offline, "
                "recording_node, alert_state) VALUES (?, ?, ?, ?, 'motion', ?, ?, ?) RETURNING id",
                (client_id, key_id, camera, started_at, int(offline), recorder,
                 AlertState.NONE if channels == [] else AlertState.PENDING))
            await db.executemany(
                "INSERT INTO alert_outbox (incident_id, channel, next_attempt_at, held) "
                "VALUES (?, ?, ?, 1)",
                [(row["id"], channel, started_at) for channel in channels or []])
        return await self.get_incident(row["id"])

    async def judge_incident(self, incident_id: int, alert: bool, now: float, **fields) -> None:
        """Record an incident's verdict `fields` (see `update_incident`) with what it decided, in one
        transaction: release its held alerts (due `now`), or, if not `alert`, delete them and mark it
        suppressed."""
        async with self._transaction() as db:
            if fields:
                await self._update(db, incident_id, fields)
            if alert:
                await db.execute(_RELEASE_HELD, (now, incident_id))
            else:
                await db.execute("DELETE FROM alert_outbox WHERE incident_id = ? AND held = 1",
                                 (incident_id,))
                await db.execute("UPDATE incidents SET alert_state = ? WHERE id = ?",
                                 (AlertState.SUPPRESSED, incident_id))

    async def incident_recorded(self, incident_id: int, run: str, now: float) -> int:
        """Mark an incident that `run` records as recorded whole (no node records it any more), releasing the
        alerts still held (due `now`: its recording failed, or its node died, before a verdict); return how
        many were. Nothing changes if another run records it (a camera back within the cooldown continued it
        here, while the node that opened it records its clip)."""
        async with self._transaction() as db:
            if not await db.execute("UPDATE incidents SET recording_node = NULL "
                                    "WHERE id = ? AND recording_node = ?", (incident_id, run)):
                return 0
            return await db.execute(_RELEASE_HELD, (now, incident_id))

    async def unrecorded_incidents(self, run: str) -> list[Incident]:
        """Return the incidents that another run of a node than `run` was recording and has not recorded
        whole, oldest first (see `incidents.recovery`)."""
        rows = await self._fetch_all(
            "SELECT * FROM incidents WHERE recording_node IS NOT NULL AND recording_node <> ? ORDER BY id",
            (run,))
        return [_incident(row) for row in rows]

    async def take_incident(self, incident_id: int, run: str, recorder: str | None) -> bool:
        """Make `run` (of a node) the one recording an incident if `recorder` still is (None: none records
        it); return whether it did (another node may have taken it first)."""
        match = "recording_node IS NULL" if recorder is None else "recording_node = ?"
        async with self._transaction() as db:
            return await db.execute(f"UPDATE incidents SET recording_node = ? WHERE id = ? AND {match}",
                                    (run, incident_id, *([] if recorder is None else [recorder]))) == 1

    async def offline_incident_near(self, client_id: int, camera: str, at: float,
                                    slack: float) -> tuple[Incident, bool] | None:
        """Return the camera's offline motion incident that spans `at` within `slack` seconds, if any (the
        newest), and whether its alerts were released already: footage sent again after a server restart finds
        the incident the first server recorded."""
        row = await self._fetch_one(
            """SELECT i.*, EXISTS (SELECT 1 FROM alert_outbox o WHERE o.incident_id = i.id AND o.held = 0)
                             OR i.alert_state IN ('suppressed', 'none', 'delivered') AS alerted
               FROM incidents i
               WHERE i.client_id = ? AND i.camera = ? AND i.offline = 1 AND i.type = 'motion'
                 AND i.started_at <= ? AND coalesce(i.ended_at, i.started_at) >= ?
               ORDER BY i.started_at DESC, i.id DESC LIMIT 1""",
            (client_id, camera, at + slack, at - slack))
        if row is None:
            return None
        values = dict(row)
        alerted = bool(values.pop("alerted"))
        return _incident(values), alerted

    async def incident_to_continue(self, client_id: int, camera: str, since: float) -> Incident | None:
        """Return the camera's newest live motion incident that ended at or after `since`, or is still open
        (left by a stream that ended less than OPEN_CONTINUES_SECONDS ago, on any node): a camera back within
        the cooldown continues it."""
        row = await self._fetch_one(
            """SELECT * FROM incidents WHERE client_id = ? AND camera = ? AND offline = 0 AND type = 'motion'
                 AND (ended_at >= ? OR ended_at IS NULL AND started_at >= ?)
               ORDER BY started_at DESC, id DESC LIMIT 1""",
            (client_id, camera, since, since - OPEN_CONTINUES_SECONDS))
        return None if row is None else _incident(row)

    async def extend_incident(self, incident_id: int, ended_at: float) -> None:
        """Record an incident's end, unless a later one is recorded already (its camera came back, perhaps to
        another node, and the incident went on there)."""
        async with self._transaction() as db:
            await db.execute("UPDATE incidents SET ended_at = ?1 "
                             "WHERE id = ?2 AND (ended_at IS NULL OR ended_at < ?1)", (ended_at, incident_id))

    async def update_incident(self, incident_id: int, **fields) -> None:
        """Set some of an incident's columns (ended_at, type, description, threat, clip_path, verdict,
        alert_state, stills, clip_from).

        Raises:
            ValueError: an unknown column, or a verdict or alert state its enum does not name.
        """
        async with self._transaction() as db:
            await self._update(db, incident_id, fields)

    @staticmethod
    async def _update(db, incident_id: int, fields: dict) -> None:
        allowed = {"ended_at", "type", "description", "threat", "clip_path", "verdict", "alert_state",
                   "stills", "clip_from"}
        if not fields or not set(fields) <= allowed:
            raise ValueError(f"cannot update incident columns {set(fields) - allowed}")
        values = [_STATES[name](value) if name in _STATES else value for name, value in fields.items()]
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await db.execute(f"UPDATE incidents SET {assignments} WHERE id = ?", (*values, incident_id))

    async def get_incident(self, incident_id: int) -> Incident:
        """Return one incident. Raises NotFoundError."""
        row = await self._fetch_one("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        if row is None:
            raise NotFoundError(f"no incident with id {incident_id}")
        return _incident(row)

    async def list_incidents(self, client_id: int | None = None, since: float | None = None,
                             review: str | None = None) -> list[Incident]:
        """Return incidents, newest first, optionally of one client, since a time, and with a review (a
        `ReviewMark`'s value, or UNREVIEWED).

        Raises:
            InvalidInputError: a review filter that is none of REVIEW_FILTERS.
        """
        reviewed = REVIEWED_AS.format(table="incidents", filter="?3")
        rows = await self._fetch_all(
            "SELECT * FROM incidents "
            "WHERE (client_id = ?1 OR ?1 IS NULL) AND (started_at >= ?2 OR ?2 IS NULL) "
            f"AND {reviewed} ORDER BY started_at DESC, id DESC", (client_id, since, _review_filter(review)))
        return [_incident(row) for row in rows]

    async def review_incident(self, client_id: int, incident_id: int, mark: ReviewMark | None, note: str,
                              by: str, now: float) -> Incident:
        """Mark one of a client's incidents reviewed or a false alarm with an optional `note` (None: not
        reviewed, the note dropped), `by` an `Editor`'s value; audited with the mark before and after. Return
        the incident. A review that changes nothing is neither written nor audited.

        Raises:
            NotFoundError: the client has no such incident (another client's is not found either).
            InvalidInputError: a note that `check_note` refuses; nothing is changed.
        """
        note = check_note(note) if mark is not None else ""
        async with self._transaction() as db:
            rows = await db.fetch_all("SELECT * FROM incidents WHERE id = ? AND client_id = ?",
                                      (incident_id, client_id))
            if not rows:
                raise NotFoundError(f"client {client_id} has no incident with id {incident_id}")
            old = _incident(rows[0])
            before = (old.review.mark, old.review.note) if old.review else (None, "")
            if before == (mark, note):
                return old
            reviewed = (None, None) if mark is None else (now, by)
            await db.execute("UPDATE incidents SET review = ?, review_note = ?, reviewed_at = ?, "
                             "reviewed_by = ? WHERE id = ?", (mark, note or None, *reviewed, incident_id))
            marks = " -> ".join((value or "none").replace("_", " ") for value in (before[0], mark))
            notes = f"note: {len(before[1])} -> {len(note)} characters"
            detail = f"incident={incident_id} by={by}: {marks}; {notes}"
            await record_audit(db, now, "incident.review", client_id, detail=detail)
        return await self.get_incident(incident_id)

    async def false_alarms_by_camera(self, client_id: int, since: float) -> dict[str, int]:
        """Return how many of a client's incidents since a time each camera has marked false alarms (cameras
        with none are absent)."""
        rows = await self._fetch_all(
            "SELECT camera, count(*) AS n FROM incidents WHERE client_id = ? AND review = 'false_alarm' "
            "AND started_at >= ? GROUP BY camera ORDER BY camera", (client_id, since))
        return {row["camera"]: row["n"] for row in rows}

    async def spend_mute_link(self, signature: str, client_id: int, now: float, expires_at: float) -> bool:
        """Spend an alert email's mute link, named by its signature, until it expires: return True the first
        time, False if it was spent already (a replay), even by two requests at the same instant."""
        async with self._transaction() as db:
            # The dead, on the way:
            await db.execute("DELETE FROM mute_links_used WHERE expires_at < ?", (now,))
            return await db.execute("INSERT INTO mute_links_used (signature, client_id, used_at, expires_at) "
                                    "VALUES (?, ?, ?, ?) ON CONFLICT (signature) DO NOTHING",
                                    (signature, client_id, now, expires_at)) == 1

    async def enqueue_alerts(self, incident_id: int, channels: list[Channel], now: float) -> None:
        """Queue one alert per channel for delivery (or mark the incident as having no channel).

        Raises:
            ValueError: a channel is unknown; nothing is queued (the sender could not deliver it).
        """
        channels = _channels(channels)
        async with self._transaction() as db:
            await db.executemany("INSERT INTO alert_outbox (incident_id, channel, next_attempt_at) "
                                 "VALUES (?, ?, ?)", [(incident_id, channel, now) for channel in channels])
            await db.execute("UPDATE incidents SET alert_state = ? WHERE id = ?",
                             (AlertState.PENDING if channels else AlertState.NONE, incident_id))

    async def due_alerts(self, now: float, claim_seconds: float = 60.0, limit: int = 20) -> list[Alert]:
        """Claim undelivered alerts whose next attempt is due, oldest first, for `claim_seconds`: no other
        node (or pass) takes them meanwhile, and any takes them after if this one never reports back (it
        died).

        A row on a channel this version does not know (written by another version sharing the database) is
        left for that version: it must not block every other client's alerts.
        """
        known = ", ".join("?" * len(Channel))
        async with self._transaction() as db:
            claimed = [row["id"] for row in await db.fetch_all(
                f"""SELECT id FROM alert_outbox
                    WHERE delivered_at IS NULL AND held = 0 AND next_attempt_at <= ?
                    AND channel IN ({known}) ORDER BY next_attempt_at LIMIT ? {self.skip_locked}""",
                (now, *Channel, limit))]
            await db.executemany("UPDATE alert_outbox SET next_attempt_at = ? WHERE id = ?",
                                 [(now + claim_seconds, outbox_id) for outbox_id in claimed])
        if not claimed:
            return []
        rows = await self._fetch_all(
            f"""SELECT o.id AS outbox_id, o.channel, o.attempts, c.name AS client_name,
                       c.email AS client_email, c.timezone AS client_timezone,
                       c.language AS client_language, i.*
                FROM alert_outbox o JOIN incidents i ON i.id = o.incident_id
                JOIN clients c ON c.id = i.client_id
                WHERE o.id IN ({", ".join("?" * len(claimed))}) ORDER BY o.id""", claimed)
        alerts = []
        for row in rows:
            values = dict(row)
            head = {name: values.pop(name) for name in _ALERT_HEAD}
            alerts.append(Alert(head["outbox_id"], Channel(head["channel"]), head["attempts"],
                                _incident(values), head["client_name"], head["client_email"],
                                head["client_timezone"], head["client_language"]))
        return alerts

    async def next_alert_due(self) -> float | None:
        """Return when the earliest undelivered alert is due, if any."""
        row = await self._fetch_one("SELECT min(next_attempt_at) AS due FROM alert_outbox "
                                   "WHERE delivered_at IS NULL AND held = 0")
        return row["due"]

    async def alert_delivered(self, alert: Alert, now: float) -> None:
        """Mark an alert delivered; the incident is delivered when all its alerts are."""
        async with self._transaction() as db:
            await db.execute("UPDATE alert_outbox SET delivered_at = ?, attempts = attempts + 1, "
                             "last_error = NULL WHERE id = ?", (now, alert.id))
            await db.execute(
                """UPDATE incidents SET alert_state = 'delivered' WHERE id = ?1 AND NOT EXISTS
                   (SELECT 1 FROM alert_outbox WHERE incident_id = ?1 AND delivered_at IS NULL)""",
                (alert.incident.id,))

    async def alert_failed(self, alert: Alert, error: str, retry_at: float) -> None:
        """Record a failed attempt and when to try again."""
        async with self._transaction() as db:
            await db.execute("UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?, "
                             "next_attempt_at = ? WHERE id = ?", (error[:500], retry_at, alert.id))

    async def expired_incidents(self, before: float) -> list[Incident]:
        """Return incidents that started before `before` (for retention)."""
        rows = await self._fetch_all("SELECT * FROM incidents WHERE started_at < ?", (before,))
        return [_incident(row) for row in rows]

    async def delete_incidents(self, incident_ids: list[int]) -> None:
        """Delete incidents (their outbox rows go with them)."""
        async with self._transaction() as db:
            await db.executemany("DELETE FROM incidents WHERE id = ?", [(i,) for i in incident_ids])

    async def record_event(self, client_id: int, camera: str, kind: str, description: str, at: float,
                           channels: list[Channel]) -> Incident:
        """Record a camera event (down, back) as an incident with no clip, and queue its alerts.

        Raises:
            ValueError: a channel is unknown; nothing is recorded.
        """
        channels = _channels(channels)
        async with self._transaction() as db:
            (row,) = await db.fetch_all(
                "INSERT INTO incidents (client_id, camera, started_at, ended_at, type, description, verdict) "
                "VALUES (?, ?, ?, ?, ?, ?, 'not_checked') RETURNING id",
                (client_id, camera, at, at, kind, description))
        await self.enqueue_alerts(row["id"], channels, at)
        return await self.get_incident(row["id"])
