"""Webhook alerts: a JSON body signed with the receiver's secret, POSTed (blocking: worker threads)."""

import hashlib
import hmac
import json
import urllib.request
from datetime import datetime, timezone

from vigint.alerts.links import AlertLinks
from vigint.alerts.templates import offline_note
from vigint.store import Incident


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
    """POST a webhook. Raises OSError (urllib's errors included) unless the receiver answers 2xx."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Vigint-Signature": webhook_signature(secret, body),
        "User-Agent": "vigint"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
