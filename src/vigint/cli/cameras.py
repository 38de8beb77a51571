"""`vigint camera …`: each customer's camera settings as the operator sees and sets them.

The settings live in the database (`store.cameras`), the same the customer edits on its page; every change
made here is audited as the operator's. A camera need not have streamed yet to be set: a customer can say on
the phone "arm the new back-door camera at night" before it is installed. The state shown ("armed until
08:00") is the one the server applies now, in the client's time zone.
"""

import math
import time
from datetime import UTC, datetime, tzinfo

from rich.console import Console

from vigint import arming
from vigint.alerts.templates import local
from vigint.cli import render
from vigint.cli.commands import Commands, open_store, option
from vigint.config import Settings
from vigint.errors import InvalidInputError
from vigint.schedule import ALWAYS, format_schedule
from vigint.store import CameraSetting, Client, Editor, Store
from vigint.store.cameras import KEEP, MAX_MUTE_SECONDS, arming_state
from vigint.tuning import MAX_MASKS, parse_rectangle
from vigint.words import plural

MAX_MUTE_MINUTES = MAX_MUTE_SECONDS // 60
SCHEDULE_HELP = """\
SCHEDULE: when the camera is armed, in the client's time zone (vigint client update --timezone):
  always | never | [outside] DAYS [HH:MM-HH:MM …], DAYS …
  DAYS is a day (Mon … Sun) or a span (Mon-Fri; Sat-Mon wraps over the week-end); a day alone is the whole
  day; a range ending at or before its start ends the next morning and belongs to the day it starts on;
  'outside' arms the camera whenever what follows does not hold (give it the opening hours).

examples:
  vigint camera set --client-id 3 --camera shop --armed "Mon-Sat 20:00-08:00, Sun"
  vigint camera set --client-id 3 --camera shop --armed "outside Mon-Fri 09:00-18:00, Sat 10:00-16:00"
  vigint camera set --client-id 3 --camera yard --mask 0,0.5,0.25,0.5 --mask 0.8,0,0.2,0.2 --sensitivity 0.5
  vigint camera set --client-id 3 --camera shop --mute-minutes 60
  vigint camera set --client-id 3 --camera yard --default-sensitivity --default-masks --armed always

See docs/cameras.md for the whole grammar and what happens when the clocks change."""

commands = Commands()
camera_commands = commands.group("camera",
                                 "each customer's camera settings: when armed, masks, sensitivity, mute")


def client_zone(client: Client, now: float) -> tzinfo:
    """Return the client's time zone, else the server's (also for a name the system no longer knows)."""
    return local(now, client.timezone).tzinfo


def camera_document(client: Client, camera: str, setting: CameraSetting | None, streamed: bool,
                    settings: Settings, now: float) -> dict:
    """Return one camera's settings and its state at `now`, as `--json` prints them."""
    operator = settings.camera(client.id, camera)
    zone = client_zone(client, now)
    instant = datetime.fromtimestamp(now, UTC)
    schedule = setting.schedule if setting else ALWAYS
    muted = setting.muted_until if setting and setting.muted_until and setting.muted_until > now else None
    current = arming_state(setting, zone, instant)
    return {"client_id": client.id, "camera": camera, "streamed": streamed, "armed": schedule.mode,
            "schedule": format_schedule(schedule), "armed_now": current.armed,
            "state": arming.describe(current, instant, zone),
            "state_until": render.iso(current.until.timestamp() if current.until else None),
            "muted_until": render.iso(muted),
            "sensitivity": setting.sensitivity if setting else None,
            "operator_sensitivity": operator.sensitivity,
            "masks": None if setting is None or setting.masks is None
            else [[list(point) for point in mask.points] for mask in setting.masks],
            "operator_masks": [list(rectangle) for rectangle in operator.masks],
            "updated_at": render.iso(setting.updated_at if setting else None),
            "updated_by": setting.updated_by.value if setting else None}


def _row(document: dict, setting: CameraSetting | None) -> tuple[str, ...]:
    """The table's cells of a camera: a value the customer did not set shows the operator's, saying so."""
    sensitivity = (f"{document['sensitivity']:g}" if document["sensitivity"] is not None
                   else f"{document['operator_sensitivity']:g} (operator's)")
    masks = document["masks"]
    operator_masks = len(document["operator_masks"])
    shapes = (plural(len(masks), "mask") if masks else "none") if masks is not None \
        else f"{plural(operator_masks, 'mask') if operator_masks else 'none'} (operator's)"
    changed = f"{render.local(setting.updated_at)} by {setting.updated_by}" if setting else "never set"
    camera = document["camera"] + ("" if document["streamed"] else "\n(never streamed)")
    return (str(document["client_id"]), camera, document["schedule"], document["state"], sensitivity, shapes,
            changed)


async def _cameras(store: Store, client: Client) -> tuple[dict[str, CameraSetting], set[str], list[str]]:
    """A client's camera settings by name, the cameras that streamed, and every camera's name, sorted."""
    settings = {setting.camera: setting for setting in await store.camera_settings(client.id)}
    streamed = {record.camera for record in await store.client_cameras(client.id)}
    names = sorted({*settings, *await store.client_camera_names(client.id)})
    return settings, streamed, names


@camera_commands.command("list", "list each client's cameras, their settings and whether each is armed now",
                         option("--client-id", type=int, help="only this client's cameras"), listing=True)
async def camera_list(args, settings: Settings, console: Console) -> int:
    now = time.time()
    documents = []
    rows = []
    async with await open_store(settings) as store:
        clients = [await store.get_client(args.client_id)] if args.client_id is not None \
            else await store.list_clients()
        for client in clients:
            found, streamed, names = await _cameras(store, client)
            for name in names:
                document = camera_document(client, name, found.get(name), name in streamed, settings, now)
                documents.append(document)
                rows.append(_row(document, found.get(name)))
    columns = ("Client", "Camera", "Armed", "Now", "Sensitivity", "Masks", "Changed")
    return render.listing(args.json, console, documents, plural(len(documents), "camera"), columns,
                          rows, optional=("Changed", "Masks", "Sensitivity"))


def _changes(args, now: float) -> dict:
    """Return what `camera set` was asked to change, as `Store.set_camera` takes it. Raises InvalidInputError
    for options that contradict each other or a value out of bounds, before anything is read or written."""
    for first, second in (("sensitivity", "default_sensitivity"), ("mute_minutes", "unmute")):
        if getattr(args, first) is not None and getattr(args, second):
            flags = " and ".join(f"--{name.replace('_', '-')}" for name in (first, second))
            raise InvalidInputError(f"{flags} contradict each other: give one")
    mask_options = [name for name, given in (("--mask", args.mask), ("--no-masks", args.no_masks),
                                             ("--default-masks", args.default_masks)) if given]
    if len(mask_options) > 1:
        raise InvalidInputError(f"{' and '.join(mask_options)} contradict each other: give one")
    changes: dict = {"schedule": KEEP if args.armed is None else args.armed}
    changes["sensitivity"] = None if args.default_sensitivity else KEEP if args.sensitivity is None \
        else args.sensitivity
    if args.mask:
        if len(args.mask) > MAX_MASKS:  # before reading any: ten thousand are refused at once
            raise InvalidInputError(f"a camera has at most {MAX_MASKS} masks "
                                    f"(this one has {len(args.mask):,})")
        changes["masks"] = [parse_rectangle(text) for text in args.mask]
    else:
        changes["masks"] = () if args.no_masks else None if args.default_masks else KEEP
    changes["muted_until"] = None if args.unmute else KEEP
    if args.mute_minutes is not None:
        if not math.isfinite(args.mute_minutes) or not 0 < args.mute_minutes <= MAX_MUTE_MINUTES:
            raise InvalidInputError(f"--mute-minutes is a number of minutes from 1 to {MAX_MUTE_MINUTES:,} "
                                    f"(7 days; for longer, --armed never); --unmute ends a mute")
        changes["muted_until"] = now + args.mute_minutes * 60
    if all(value is KEEP for value in changes.values()):
        raise InvalidInputError("nothing to change: give --armed, --sensitivity, --mask, --no-masks, "
                                "--mute-minutes or another option (vigint camera set --help)")
    return changes


@camera_commands.command(
    "set", "change a camera's settings; the others stay as they are (audited as the operator's)",
    option("--client-id", type=int, required=True), option("--camera", required=True, metavar="NAME"),
    option("--armed", metavar="SCHEDULE", help="always, never, or when it is armed (SCHEDULE below)"),
    option("--sensitivity", type=float, metavar="X",
           help="0.1 to 10: 2 sees fainter changes, 0.5 only strong ones (default: the operator's)"),
    option("--default-sensitivity", action="store_true", help="back to the operator's sensitivity"),
    option("--mask", action="append", metavar="X,Y,W,H",
           help="a region to ignore: its top left corner, width and height as fractions of the picture "
                "(0,0.5,0.25,0.5: the left quarter of the bottom half); repeat for more; replaces its masks"),
    option("--no-masks", action="store_true", help="no mask at all (not even the operator's)"),
    option("--default-masks", action="store_true", help="back to the operator's masks"),
    option("--mute-minutes", type=float, metavar="M",
           help="no incident nor alert for M minutes (at most 7 days)"),
    option("--unmute", action="store_true", help="end a mute now"),
    listing=True, epilog=SCHEDULE_HELP)
async def camera_set(args, settings: Settings, console: Console) -> int:
    now = time.time()
    changes = _changes(args, now)
    async with await open_store(settings) as store:
        client = await store.get_client(args.client_id)
        setting = await store.set_camera(client.id, args.camera, Editor.OPERATOR, now, **changes)
        streamed = args.camera in {record.camera for record in await store.client_cameras(client.id)}
    document = camera_document(client, args.camera, setting, streamed, settings, now)
    if args.json:
        render.print_json(document)
        return 0
    changed = "" if setting.updated_at == now else " (nothing changed)"
    _, _, _, state, sensitivity, masks, _ = _row(document, setting)
    console.print(f"Camera {args.camera!r} of client {client.id} ({client.name}){changed}: armed "
                  f"{document['schedule']}; {state} now; sensitivity {sensitivity}; masks: {masks}.",
                  highlight=False)
    return 0
