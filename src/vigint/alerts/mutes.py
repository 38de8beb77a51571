"""The mute links of alert emails: one click mutes the incident's camera, with no sign-in (pure: the clock is
an argument).

A link is `<page>/mute/<incident id>?for=1h|morning&exp=…&sig=…`, where sig is an HMAC, with the server's link
secret, of what the link does: mute that incident's client's camera, for how long, until the link expires. A
forged, altered or expired link, or one pointing at another client's incident, fails the check. A link works
once: the page remembers its signature until it expires (`Store.spend_mute_link`). It expires within
MUTE_LINK_HOURS, far sooner than a clip link: a mute is about tonight, and an old email forwarded or leaked
should not silence a camera.

Mail scanners open every link of an email to check it, so opening one only shows a page with a button; the
mute is that button's POST (web/mute.py).
"""

import hashlib
import hmac
import json
from datetime import datetime, timedelta, tzinfo
from urllib.parse import urlencode

from vigint import arming
from vigint.alerts.links import CAMERA_EVENTS, EXPIRY_PATTERN, SIGNATURE_PATTERN
from vigint.store import Incident

MUTE_LINK_HOURS = 24
HOUR = "1h"
MORNING = "morning"
CHOICES = (HOUR, MORNING)


def _signature(secret: str, incident: Incident, choice: str, expires: int) -> str:
    # JSON: a camera name cannot shift its neighbours, and "mute" keeps a clip link's signature from ever
    # fitting.
    message = json.dumps(["mute", incident.id, incident.client_id, incident.camera, choice, expires]).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def offers_mute(incident: Incident) -> bool:
    """Tell whether an incident's alert offers mute links: not a camera going down or coming back, which a
    mute does not silence (a camera that stops streaming is reported whether armed or not)."""
    return incident.type not in CAMERA_EVENTS


def mute_link(page_url: str, secret: str, incident: Incident, choice: str, expires: int) -> str:
    """Return the signed link that mutes an incident's camera (`choice`: HOUR or MORNING), valid until
    `expires` (Unix seconds)."""
    query = urlencode({"for": choice, "exp": expires, "sig": _signature(secret, incident, choice, expires)})
    return f"{page_url.rstrip('/')}/mute/{incident.id}?{query}"


def mute_link_is_valid(secret: str, incident: Incident, choice: str, expires: str, signature: str,
                       now: float) -> bool:
    """Tell whether a mute link's values, as the request carries them, mute this incident's camera now.
    Malformed values make the link invalid: they never raise."""
    if choice not in CHOICES or not EXPIRY_PATTERN.fullmatch(expires):
        return False
    if not SIGNATURE_PATTERN.fullmatch(signature) or int(expires) < now:
        return False
    return hmac.compare_digest(_signature(secret, incident, choice, int(expires)), signature)


def mute_end(choice: str, now: datetime, zone: tzinfo) -> datetime:
    """Return when a mute chosen at `now` (timezone-aware) ends: an hour later, or the next morning on the
    client's wall clock (`arming.next_morning`, as the page's button)."""
    if choice == HOUR:
        return now + timedelta(hours=1)
    return arming.next_morning(now, zone)
