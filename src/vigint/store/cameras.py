"""Each customer's own settings of its cameras: when each is armed, its masks, its sensitivity, its mute.

Set by the customer on its page, by the operator (`vigint camera set`) or by the mute link of an alert email,
for a camera that need not have streamed yet. Every value is checked (`vigint.schedule`, `vigint.tuning`)
before it is written, and every change is audited in its own transaction, with who made it and what changed. A
sensitivity or masks left unset (None) mean the operator's: the camera's `[camera CLIENT_ID/NAME]` section of
config.ini, else `[motion]`.
"""

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo

from vigint import arming, tuning
from vigint.errors import InvalidInputError, NotFoundError
from vigint.protocol import MAX_CAMERA_NAME, is_camera_name
from vigint.schedule import ALWAYS, Schedule, format_schedule, parse_schedule
from vigint.store.audit import audit_time, record_audit
from vigint.store.engine import Engine, Row
from vigint.tuning import Mask

# Cameras one client may have settings for: far above any shop (16 streams at once by default), low enough
# that a hostile page cannot fill the database with names.
MAX_CAMERA_SETTINGS = 256
# The longest mute: a week away is a schedule's work ("never"), and a mute never silences a camera for good.
MAX_MUTE_SECONDS = 7 * 86_400


class Editor(enum.StrEnum):
    """Who changed a camera's settings."""

    OPERATOR = "operator"  # vigint camera set
    CUSTOMER = "customer"  # its signed-in page
    MUTE_LINK = "mute link"  # the signed link of an alert email


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # a setting `set_camera` leaves as it is


@dataclass(frozen=True)
class CameraSetting:
    """One camera's settings as its customer (or the operator) set them."""

    client_id: int
    camera: str
    schedule: Schedule  # when it is armed (ALWAYS until set)
    sensitivity: float | None  # None: the operator's
    masks: tuple[Mask, ...] | None  # None: the operator's; () none at all
    muted_until: float | None  # Unix time a mute ends; None: not muted (an ended mute may stay until changed)
    updated_at: float
    updated_by: Editor

    @property
    def armed(self) -> str:
        """Return always, never or schedule."""
        return self.schedule.mode


def _setting(row: Row) -> CameraSetting:
    masks = None if row["masks"] is None else tuning.masks_from_json(row["masks"])
    return CameraSetting(row["client_id"], row["camera"], parse_schedule(row["schedule"] or row["armed"]),
                         row["sensitivity"], masks, row["muted_until"], row["updated_at"],
                         Editor(row["updated_by"]))


def _shown(name: str, value: object) -> str:
    """A setting's value as the audit trail writes it."""
    if value is None:
        return "none" if name == "muted_until" else "default"
    if isinstance(value, Schedule):
        return repr(format_schedule(value))
    if name == "masks":
        return f"{len(value)} shape{'' if len(value) == 1 else 's'}"
    return audit_time(value) if name == "muted_until" else f"{value:g}"


def _checked(now: float, schedule: str | _Keep, sensitivity: float | None | _Keep,
             masks: Sequence[Mask] | None | _Keep, muted_until: float | None | _Keep) -> dict[str, object]:
    """Return the settings given, checked, by field name."""
    changes: dict[str, object] = {}
    if schedule is not KEEP:
        changes["schedule"] = parse_schedule(schedule)
    if sensitivity is not KEEP:
        changes["sensitivity"] = None if sensitivity is None else tuning.check_sensitivity(sensitivity)
    if masks is not KEEP:
        changes["masks"] = None if masks is None else tuning.check_masks(masks)
    if muted_until is not KEEP and muted_until is not None:
        if not tuning.is_finite_number(muted_until) or muted_until > now + MAX_MUTE_SECONDS:
            raise InvalidInputError(f"a mute lasts at most {MAX_MUTE_SECONDS // 86_400} days")
        muted_until = float(muted_until) if muted_until > now else None  # a mute that ended: unmuted
    if muted_until is not KEEP:
        changes["muted_until"] = muted_until
    if not changes:
        raise InvalidInputError("nothing to change: give a schedule, a sensitivity, masks or a mute")
    return changes


def arming_state(setting: CameraSetting | None, zone: tzinfo, at: datetime) -> arming.ArmingState:
    """Return a camera's state at the instant `at` by its settings (None: never set, always armed)."""
    if setting is None:
        return arming.state(ALWAYS, zone, at)
    muted = None if setting.muted_until is None else datetime.fromtimestamp(setting.muted_until, UTC)
    return arming.state(setting.schedule, zone, at, muted)


class CameraQueries(Engine):
    """Reading and changing each client's camera settings."""

    async def camera_settings(self, client_id: int | None = None) -> list[CameraSetting]:
        """Return the cameras that have settings, of one client (or all), by client and name."""
        rows = await self._fetch_all("SELECT * FROM camera_settings WHERE client_id = ?1 OR ?1 IS NULL "
                                     "ORDER BY client_id, camera", (client_id,))
        return [_setting(row) for row in rows]

    async def camera_setting(self, client_id: int, camera: str) -> CameraSetting | None:
        """Return one camera's settings; None if none were ever set (it is then armed always, with the
        operator's tuning)."""
        row = await self._fetch_one("SELECT * FROM camera_settings WHERE client_id = ? AND camera = ?",
                                    (client_id, camera))
        return None if row is None else _setting(row)

    async def watched_cameras(self, client_id: int) -> tuple[str | None, list[CameraSetting]]:
        """Return what a node needs when a client's stream opens: its time zone (None: the server's) and its
        cameras' settings."""
        row = await self._fetch_one("SELECT timezone FROM clients WHERE id = ?", (client_id,))
        zone = None if row is None else row["timezone"]
        return zone, await self.camera_settings(client_id)

    async def camera_changes(self, since: float) -> tuple[dict[int, str | None], list[CameraSetting]]:
        """Return what changed at or after `since` (Unix time, as the writers stamp it): the time zone (None:
        the server's) of each client updated, and each camera's settings written. Two look-ups whatever the
        number of clients: a node asks every few seconds for all its streams at once."""
        clients = await self._fetch_all("SELECT id, timezone FROM clients WHERE updated_at >= ?", (since,))
        rows = await self._fetch_all("SELECT * FROM camera_settings WHERE updated_at >= ? "
                                     "ORDER BY client_id, camera", (since,))
        return {row["id"]: row["timezone"] for row in clients}, [_setting(row) for row in rows]

    async def set_camera(self, client_id: int, camera: str, by: Editor, now: float | None = None, *,
                         schedule: str | _Keep = KEEP, sensitivity: float | None | _Keep = KEEP,
                         masks: Sequence[Mask] | None | _Keep = KEEP,
                         muted_until: float | None | _Keep = KEEP) -> CameraSetting:
        """Change some of a camera's settings, leaving the others: `schedule` (always, never or a SCHEDULE, as
        a user typed it), `sensitivity` and `masks` (None: back to the operator's), `muted_until` (Unix time;
        None or a time past: unmuted). The change is audited with `by` and each value before and after; a
        change that changes nothing is neither written nor audited. Return the settings now in force.

        Raises:
            NotFoundError: no such client.
            InvalidInputError: a camera name or a value that is refused, nothing to change, or a new camera
                past MAX_CAMERA_SETTINGS; nothing is changed then.
        """
        if not is_camera_name(camera):
            raise InvalidInputError(
                f"camera names are 1-{MAX_CAMERA_NAME} letters, digits, spaces, '.', '_' or '-'")
        now = time.time() if now is None else now
        changes = _checked(now, schedule, sensitivity, masks, muted_until)
        async with self._transaction() as db:
            await db.serialize(f"camera settings {client_id}")  # the count, then the insert: one at a time
            if await self._fetch_one("SELECT id FROM clients WHERE id = ?", (client_id,)) is None:
                raise NotFoundError(f"no client with id {client_id}")
            old = await self.camera_setting(client_id, camera)
            if old is None:
                (count,) = await db.fetch_all("SELECT count(*) AS n FROM camera_settings WHERE client_id = ?",
                                              (client_id,))
                if count["n"] >= MAX_CAMERA_SETTINGS:
                    raise InvalidInputError(f"client {client_id} has settings for {MAX_CAMERA_SETTINGS} "
                                            "cameras already, the most it may have")
                old = CameraSetting(client_id, camera, ALWAYS, None, None, None, now, by)  # the defaults
            new = replace(old, **changes, updated_at=now, updated_by=by)
            changed = [name for name in changes if getattr(old, name) != getattr(new, name)]
            if not changed:
                return old
            await db.execute(
                """INSERT INTO camera_settings (client_id, camera, armed, schedule, sensitivity, masks,
                                                muted_until, updated_at, updated_by)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (client_id, camera) DO UPDATE SET armed = excluded.armed,
                     schedule = excluded.schedule, sensitivity = excluded.sensitivity, masks = excluded.masks,
                     muted_until = excluded.muted_until, updated_at = excluded.updated_at,
                     updated_by = excluded.updated_by""",
                (client_id, camera, new.armed,
                 format_schedule(new.schedule) if new.schedule.entries else None,
                 new.sensitivity,
                 None if new.masks is None else tuning.masks_to_json(new.masks),
                 new.muted_until, now, by.value))
            detail = "; ".join(
                f"{name}: {_shown(name, getattr(old, name))} -> {_shown(name, getattr(new, name))}"
                for name in changed)
            await record_audit(db, now, "camera.set", client_id,
                               detail=f"camera={camera!r} by={by}: {detail}")
        return new
