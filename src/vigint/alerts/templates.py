"""What alerts say, in each language they are written in, with times in the client's zone (pure: no I/O).

Every sentence a customer reads lives here, both languages side by side with the same keys (a test checks that
neither lacks one). Dates follow each language's habit (2026-01-31 in English, 31/01/2026 in French), always
with the time zone's abbreviation: a customer travelling, or a camera in another zone, knows which time it is.
"""

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigint.store import Incident

TEMPLATES = {
    "en": {
        "date": "%Y-%m-%d",
        "moment": "{date} {time}",
        "colon": ":",
        "subject": "[Vigint] {kind} at {camera}, {when}",
        "event_subject": "[Vigint] {camera}: {kind}",
        "greeting": "Hello {name},",
        "seen": 'Vigint saw {kind} on camera "{camera}" at {when}.',
        "threat": "Threat level (AI check): {threat}/2.",
        "open": "See the incident",
        "open_cameras": "See your cameras",
        "still": 'Picture from camera "{camera}"',
        "download": "Download the clip",
        "valid_until": "link valid until {expires}",
        "no_clip": "No clip could be saved for this incident.",
        "mute_1h": "Mute this camera for 1 hour",
        "mute_morning": "Mute it until morning (08:00)",
        "mute_note": "A muted camera records no incident and sends no alert. Each mute link works once, "
                     "within 24 hours, without signing in.",
        "signature": "— Vigint",
        "kinds": {"motion": "motion", "camera_down": "camera down", "camera_back": "camera back"},
        "offline_same_day": "Recorded {date} {start_time}–{end_time} {zone} while the camera could not reach "
                            "Vigint; sent once the connection was back.",
        "offline_span": "Recorded {start}–{end} {zone} while the camera could not reach Vigint; sent once "
                        "the connection was back.",
        "camera_down": 'Camera "{camera}" has sent no video since {when}.',
        "camera_back": 'Camera "{camera}" has been streaming again since {when}.',
        "recovering": 'Camera "{camera}" has been streaming again since {when}; {amount} of footage recorded '
                      "while it was offline is being recovered.",
        "sign_in_subject": "Your Vigint sign-in link",
        "sign_in": "Open this link to see your incidents, clips and cameras:\n\n{link}\n\n"
                   "It works once, within {minutes} minutes. If you did not ask for it, ignore this email: "
                   "nobody can sign in without it.",
    },
    "fr": {
        "date": "%d/%m/%Y",
        "moment": "{date} à {time}",
        "colon": " :",
        "subject": "[Vigint] {kind} sur {camera}, le {when}",
        "event_subject": "[Vigint] {camera} : {kind}",
        "greeting": "Bonjour {name},",
        "seen": "Vigint a détecté {kind} sur la caméra « {camera} » le {when}.",
        "threat": "Niveau de menace (vérification par IA) : {threat}/2.",
        "open": "Voir l'incident",
        "open_cameras": "Voir vos caméras",
        "still": "Image de la caméra « {camera} »",
        "download": "Télécharger la séquence",
        "valid_until": "lien valable jusqu'au {expires}",
        "no_clip": "Aucune séquence n'a pu être enregistrée pour cet incident.",
        "mute_1h": "Mettre cette caméra en sourdine pendant 1 heure",
        "mute_morning": "La mettre en sourdine jusqu'au matin (8 h)",
        "mute_note": "Une caméra en sourdine n'enregistre aucun incident et n'envoie aucune alerte. Chaque "
                     "lien de sourdine fonctionne une fois, dans les 24 heures, sans connexion.",
        "signature": "— Vigint",
        "kinds": {"motion": "un mouvement", "camera_down": "caméra hors ligne",
                  "camera_back": "caméra de nouveau en ligne"},
        "offline_same_day": "Enregistré le {date} de {start_time} à {end_time} {zone}, pendant que la caméra "
                            "ne pouvait pas joindre Vigint ; envoyé une fois la connexion rétablie.",
        "offline_span": "Enregistré du {start} au {end} {zone}, pendant que la caméra ne pouvait pas joindre "
                        "Vigint ; envoyé une fois la connexion rétablie.",
        "camera_down": "La caméra « {camera} » n'envoie plus de vidéo depuis le {when}.",
        "camera_back": "La caméra « {camera} » transmet de nouveau la vidéo depuis le {when}.",
        "recovering": "La caméra « {camera} » transmet de nouveau la vidéo depuis le {when} ; les {amount} "
                      "de vidéo enregistrées pendant la coupure sont en cours de récupération.",
        "sign_in_subject": "Votre lien de connexion Vigint",
        "sign_in": "Ouvrez ce lien pour voir vos incidents, vos séquences et vos caméras :\n\n{link}\n\n"
                   "Il ne fonctionne qu'une fois, dans les {minutes} minutes. Si vous ne l'avez pas "
                   "demandé, ignorez ce message : personne ne peut se connecter sans lui.",
    },
}
LANGUAGES = tuple(TEMPLATES)


def choose_language(preferred: str | None, default: str) -> str:
    """Return the language an alert is written in: the client's (`preferred`) if set and known, else `default`
    (the server's `[alerts] language`): a value written by another version never stops an alert."""
    return preferred if preferred in TEMPLATES else default


def local(timestamp: float, timezone_name: str | None) -> datetime:
    """Return `timestamp` in the IANA zone `timezone_name`, or in the server's zone (None, or a zone the
    system no longer knows: an alert is never lost to it)."""
    try:
        zone = ZoneInfo(timezone_name) if timezone_name else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return datetime.fromtimestamp(timestamp, zone).astimezone(zone)


def _parts(moment: datetime, language: str) -> dict[str, str]:
    # Only ASCII strftime formats: strftime goes through the C library, and "à" would depend on its locale.
    return {"date": moment.strftime(TEMPLATES[language]["date"]), "time": moment.strftime("%H:%M:%S"),
            "zone": moment.strftime("%Z")}


def when(timestamp: float, language: str, timezone_name: str | None) -> str:
    """Return a date and time as `language` writes it, in the client's zone, with the zone's abbreviation."""
    parts = _parts(local(timestamp, timezone_name), language)
    return f"{TEMPLATES[language]['moment'].format(**parts)} {parts['zone']}"


def offline_note(incident: Incident, language: str = "en", timezone_name: str | None = None) -> str:
    """Return the sentence saying that an incident was recorded while its camera was offline (empty if it was
    not): when it started and ended, in the client's zone (the end without its date on the same day)."""
    if not incident.offline:
        return ""
    template = TEMPLATES[language]
    start = local(incident.started_at, timezone_name)
    end = local(incident.ended_at or incident.started_at, timezone_name)
    first = _parts(start, language)
    last = _parts(end, language)
    if start.date() == end.date():
        return template["offline_same_day"].format(date=first["date"], start_time=first["time"],
                                                   end_time=last["time"], zone=last["zone"])
    return template["offline_span"].format(start=template["moment"].format(**first),
                                           end=template["moment"].format(**last), zone=last["zone"])


def camera_down(camera: str, last_seen_at: float, language: str, timezone_name: str | None) -> str:
    """Return the camera-down alert's sentence: since when the camera has sent nothing."""
    since = when(last_seen_at, language, timezone_name)
    return TEMPLATES[language]["camera_down"].format(camera=camera, when=since)


def camera_back(camera: str, at: float, spooled_seconds: float | None, language: str,
                timezone_name: str | None) -> str:
    """Return the camera-back alert's sentence: since when it streams, and the footage its agent recorded
    meanwhile and is sending now (`spooled_seconds`, from its hello; None or 0: none)."""
    fields = {"camera": camera, "when": when(at, language, timezone_name)}
    if not spooled_seconds:
        return TEMPLATES[language]["camera_back"].format(**fields)
    amount = f"{spooled_seconds / 60:.0f} min" if spooled_seconds >= 90 else f"{spooled_seconds:.0f} s"
    return TEMPLATES[language]["recovering"].format(**fields, amount=amount)
