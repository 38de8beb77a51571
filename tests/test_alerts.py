from vigint import alerts
from vigint.config import AlertSettings, EmailSettings
from vigint.store import Incident

INCIDENT = Incident(7, 3, 1, "entrée", 1_767_225_600.0, None, "motion", "", 1, "clips/3/7.mp4", "not_checked",
                    "pending")


def test_french_email_with_its_link():
    link = alerts.clip_link("https://v.example:5002", "secret", INCIDENT, 1_767_312_000)
    message = alerts.compose_email(INCIDENT, "Boulangerie", "b@b.test", link, 1_767_312_000,
                                   AlertSettings(language="fr"), EmailSettings(sender="alertes@v.example"))
    body = message.get_payload(decode=True).decode()
    assert message["Subject"] == "[Vigint] un mouvement sur entrée, 2026-01-01 00:00:00"
    assert "Bonjour Boulangerie" in body and link in body and "2026-01-02 00:00:00" in body
    assert link.startswith("https://v.example:5002/clips/7?exp=1767312000&sig=")


def test_links_expire_and_bind_the_incident_and_its_client():
    link = alerts.clip_link("http://h", "secret", INCIDENT, 2_000)
    signature = link.rsplit("sig=", 1)[1]
    assert alerts.link_is_valid("secret", INCIDENT, "2000", signature, now=1_999)
    assert not alerts.link_is_valid("secret", INCIDENT, "2000", signature, now=2_001)
    assert not alerts.link_is_valid("other", INCIDENT, "2000", signature, now=1_999)
    moved = Incident(**{**INCIDENT.__dict__, "client_id": 4})
    assert not alerts.link_is_valid("secret", moved, "2000", signature, now=1_999)
    assert not alerts.link_is_valid("secret", INCIDENT, "2000x", signature, now=1_999)
