"""What the cameras saw (`vigint incidents list`): incidents, newest first, with the AI's check and whether
the customer was told. Read-only."""

from rich.console import Console

from vigint.cli import render
from vigint.cli.commands import Commands, open_store, option, parse_day, utc_midnight
from vigint.config import Settings
from vigint.store import Incident, Verdict
from vigint.store.incidents import REVIEW_FILTERS
from vigint.words import plural

commands = Commands()


incident_commands = commands.group("incidents", "what the cameras saw, and whether the customer was told")


@incident_commands.command("list", "list incidents, newest first, with their alert delivery",
                           option("--client-id", type=int),
                           option("--since", type=parse_day, metavar="YYYY-MM-DD",
                                  help="first day shown (UTC)"),
                           option("--review", choices=REVIEW_FILTERS,
                                  help="only the incidents not reviewed yet, marked reviewed, or marked "
                                       "false alarms by the customer"),
                           listing=True)
async def incidents_list(args, settings: Settings, console: Console) -> int:
    async with await open_store(settings) as store:
        if args.client_id is not None:
            await store.get_client(args.client_id)
        found = await store.list_incidents(args.client_id, utc_midnight(args.since), args.review)
    documents = [{"id": i.id, "client_id": i.client_id, "camera": i.camera,
                  "started_at": render.iso(i.started_at), "ended_at": render.iso(i.ended_at), "type": i.type,
                  "description": i.description, "threat": i.threat, "verdict": i.verdict, "clip": i.clip_path,
                  "alert_state": i.alert_state, "offline": i.offline, "review": _review(i)} for i in found]
    rows = [(str(i.id), str(i.client_id), i.camera, render.local(i.started_at),
             render.local(i.ended_at) if i.ended_at else "going on", _kind(i), *_ai_check(i),
             "yes" if i.clip_path else "—", i.alert_state, _review_cell(i)) for i in found]
    columns = ("ID", "Client", "Camera", "Started", "Ended", "Type", "Threat", "AI", "Clip", "Alert",
               "Review")
    return render.listing(args.json, console, documents, f"{plural(len(found), 'incident')}, newest first",
                          columns, rows, optional=("Threat", "Clip", "Client", "Ended", "Review"))


def _review_cell(incident: Incident) -> str:
    """The Review cell: the customer's mark and note, if any."""
    review = incident.review
    if review is None:
        return "—"
    return review.mark.replace("_", " ") + (f": {review.note}" if review.note else "")


def _review(incident: Incident) -> dict | None:
    """An incident's review as `--json` shows it: its mark, the customer's note, when and by whom; None if
    none."""
    review = incident.review
    if review is None:
        return None
    return {"state": review.mark.value, "note": review.note, "at": render.iso(review.at), "by": review.by}


def _kind(incident: Incident) -> str:
    """The Type cell: the kind of incident, whether it was recorded offline, and its description if any."""
    offline = " (recorded while offline)" if incident.offline else ""
    description = f": {incident.description}" if incident.description else ""
    return incident.type + offline + description


def _ai_check(incident: Incident) -> tuple[str, str]:
    """The Threat and AI cells: a threat level is the AI's, so none is shown where no AI looked."""
    if incident.verdict == Verdict.NOT_CHECKED:
        return "—", "not checked"
    return str(incident.threat), incident.verdict
