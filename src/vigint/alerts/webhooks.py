"""Webhook alerts: a JSON body signed with the receiver's secret, POSTed (blocking: worker threads)."""

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from datetime import datetime, timezone

from vigint.alerts.emails import one_line
from vigint.alerts.links import AlertLinks
from vigint.alerts.templates import offline_note
from vigint.errors import Undeliverable
from vigint.store import Incident

RETRIED_STATUSES = frozenset({408, 429})  # client errors that mean "not now": timeout, too many requests


def webhook_body(incident: Incident, targets: AlertLinks) -> bytes:
    """Return the JSON a webhook receives for an incident: what happened, its page and its clip link."""
    started_at = datetime.fromtimestamp(incident.started_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return json.dumps({"type": "incident", "incident_id": incident.id, "client_id": incident.client_id,
                       "camera": incident.camera, "kind": incident.type, "description": incident.description,
                       "threat": incident.threat, "started_at": started_at, "page_url": targets.page,
                       "clip_url": targets.clip, "offline": incident.offline,
                       "note": offline_note(incident)}).encode()


def webhook_signature(secret: str, body: bytes) -> str:
    """Return the X-Vigint-Signature header value: sha256= and the HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(url: str, secret: str, body: bytes, timeout: float) -> None:
    """POST a webhook.

    Raises:
        Undeliverable: the receiver answered a 4xx (other than 408 or 429): the same body would be refused
            again.
        OSError: any other failure (urllib's errors included: 5xx, timeouts, refused connections), worth
            retrying.
    """
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Vigint-Signature": webhook_signature(secret, body),
        "User-Agent": "vigint"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:  # the URL may hold a token: the reason names only the answer
        if 400 <= error.code < 500 and error.code not in RETRIED_STATUSES:
            reason = one_line(str(error.reason))
            raise Undeliverable(f"the webhook receiver answered {error.code} {reason}") from None
        raise
