import re
import stat
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from footage import make_jpeg

from vigint.alerts import emails, templates
from vigint.alerts.links import AlertLinks
from vigint.config import AlertSettings, EmailSettings
from vigint.store import Alert, Channel, Incident

# 2026-01-01 00:00:00 UTC, 1 a.m. in Paris; its clip is kept until 2026-01-31 00:00:00 UTC.
INCIDENT = Incident(7, 3, 1, "entrée", 1_767_225_600.0, None, "motion", "", 1, "clips/3/7.mp4", "not_checked",
                    "pending")
TARGETS = AlertLinks("https://vigint.example/incidents/7",
                     "https://vigint.example:5002/clips/7?exp=1769817600&sig=" + "ab" * 32, 1_769_817_600)


def alert(incident: Incident = INCIDENT, timezone: str | None = "UTC", language: str | None = None,
          name: str = "Acme & Co") -> Alert:
    return Alert(1, Channel.EMAIL, 0, incident, name, "ops@acme.test", timezone, language)


def received(sent: Alert, still: bytes | None = None, server_language: str = "en") -> EmailMessage:
    """Compose the alert and read it back as the customer's mail client does."""
    message = emails.compose_email(sent, TARGETS, AlertSettings(language=server_language),
                                   EmailSettings(sender="alerts@vigint.example"), "secret", still)
    return BytesParser(policy=policy.default).parsebytes(bytes(message))


def parts(message: EmailMessage) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_an_alert_with_a_still_shows_it_inline_in_its_html_part():
    still = make_jpeg()
    message = received(alert(), still)
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()
    assert plain.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
    page, image = related.get_payload()
    assert page.get_content_type() == "text/html" and image.get_content_type() == "image/jpeg"
    assert image.get_content_disposition() == "inline" and image.get_content() == still
    reference = image["Content-ID"].strip("<>")
    html = page.get_content()
    assert f'src="cid:{reference}"' in html and 'alt="Picture from camera &quot;entrée&quot;"' in html
    # The picture and the button open the incident's page; the clip is a download link of its own.
    assert html.count(f'href="{TARGETS.page}"') == 2 and f'href="{TARGETS.clip.replace("&", "&amp;")}"' in html
    assert "See the incident" in html and "Download the clip</a> (link valid until 2026-01-31 00:00:00 UTC)" in html
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Message-ID"] == emails.message_id(7, "secret", "alerts@vigint.example")
    assert received(alert(), still)["Message-ID"] == message["Message-ID"]  # composed again: the same message


def test_without_a_still_an_alert_is_a_text_part_and_an_html_part():
    message = received(alert())
    assert [part.get_content_type() for part in message.walk()] == ["multipart/alternative", "text/plain",
                                                                     "text/html"]
    plain, html = parts(message)
    assert "cid:" not in html and "<img" not in html
    assert plain == ("Hello Acme & Co,\n\n"
                     'Vigint saw motion on camera "entrée" at 2026-01-01 00:00:00 UTC.\n\n'
                     f"See the incident:\n{TARGETS.page}\n\n"
                     f"Download the clip (link valid until 2026-01-31 00:00:00 UTC):\n{TARGETS.clip}\n\n"
                     "— Vigint\n")


def test_every_value_is_escaped_in_html_and_the_message_id_is_the_incident_s():
    hostile = Incident(**{**INCIDENT.__dict__, "camera": "<b>door</b>", "description": "<script>x()</script>"})
    first = received(alert(hostile))
    plain, html = parts(first)
    assert "<script>" in plain and "<script>" not in html and "&lt;script&gt;" in html and "Acme &amp; Co" in html
    assert "<b>door</b>" not in html and f'href="{TARGETS.clip.replace("&", "&amp;")}"' in html
    assert first["Message-ID"].endswith("@vigint.example>") and "secret" not in first["Message-ID"]
    assert first["Message-ID"] != received(alert(Incident(**{**INCIDENT.__dict__, "id": 8})))["Message-ID"]


def test_the_threat_level_is_shown_only_when_the_ai_checked_the_incident():
    plain, html = parts(received(alert()))
    assert "Threat" not in plain and "Threat" not in html  # no AI ran: no threat level to show
    checked = Incident(**{**INCIDENT.__dict__, "verdict": "confirmed", "threat": 2, "description": "A person."})
    plain, html = parts(received(alert(checked)))
    assert "A person.\nThreat level (AI check): 2/2.\n" in plain and "Threat level (AI check): 2/2." in html


def test_times_are_in_the_client_s_time_zone_with_its_abbreviation():
    offline = Incident(**{**INCIDENT.__dict__, "ended_at": INCIDENT.started_at + 425, "offline": True})
    message = received(alert(offline, "Europe/Paris"))
    plain, html = parts(message)  # midnight UTC on New Year's Day is 1 a.m. in Paris
    assert message["Subject"] == "[Vigint] motion at entrée, 2026-01-01 01:00:00 CET"
    assert 'on camera "entrée" at 2026-01-01 01:00:00 CET.\nRecorded 2026-01-01 01:00:00–01:07:05 CET while' in plain
    assert "until 2026-01-31 01:00:00 CET" in plain and "until 2026-01-31 01:00:00 CET" in html
    gone = received(alert(offline, "Atlantis/Capital"))
    assert gone["Subject"]  # a zone the system no longer knows: the server's, and the alert still goes


def test_a_french_client_gets_its_alert_in_french_whatever_the_server_s_language():
    message = received(alert(timezone="Europe/Paris", language="fr", name="Boulangerie"), make_jpeg())
    plain, html = parts(message)
    assert message["Subject"] == "[Vigint] un mouvement sur entrée, le 01/01/2026 à 01:00:00 CET"
    assert plain == ("Bonjour Boulangerie,\n\n"
                     "Vigint a détecté un mouvement sur la caméra « entrée » le 01/01/2026 à 01:00:00 CET.\n\n"
                     f"Voir l'incident :\n{TARGETS.page}\n\n"
                     "Télécharger la séquence (lien valable jusqu'au 31/01/2026 à 01:00:00 CET) :\n"
                     f"{TARGETS.clip}\n\n"
                     "— Vigint\n")
    assert "Voir l&#x27;incident</a>" in html and 'alt="Image de la caméra « entrée »"' in html
    assert not re.search(r"\b(the|clip|See|Download|Hello)\b", plain + html)
    assert parts(received(alert(), server_language="fr"))[0].startswith("Bonjour")  # the server's language
    assert parts(received(alert(language="en"), server_language="fr"))[0].startswith("Hello")
    assert parts(received(alert(language="de")))[0].startswith("Hello")  # unknown to this version: the server's


def test_an_incident_without_a_clip_says_so_and_offers_no_download():
    plain, html = parts(received(alert(Incident(**{**INCIDENT.__dict__, "clip_path": None}), language="fr")))
    assert "/clips/" not in plain + html and TARGETS.page in plain
    assert "Aucune séquence n'a pu être enregistrée pour cet incident.\n\n— Vigint" in plain


def test_camera_events_are_dated_in_the_client_s_zone_and_language_and_open_the_page():
    down = Incident(**{**INCIDENT.__dict__, "type": "camera_down", "clip_path": None, "camera": "porte",
                       "description": templates.camera_down("porte", INCIDENT.started_at, "fr", "Europe/Paris")})
    targets = AlertLinks("https://vigint.example/cameras", TARGETS.clip, TARGETS.clip_expires)
    message = emails.compose_email(alert(down, "Europe/Paris", "fr"), targets, AlertSettings(), EmailSettings(),
                                   "secret")
    plain, html = parts(message)
    assert message["Subject"] == "[Vigint] porte : caméra hors ligne"
    assert plain == ("Bonjour Acme & Co,\n\nLa caméra « porte » n'envoie plus de vidéo depuis le 01/01/2026 à "
                     "01:00:00 CET.\n\nVoir vos caméras :\nhttps://vigint.example/cameras\n\n— Vigint\n")
    assert 'href="https://vigint.example/cameras"' in html and "/clips/" not in html and "Voir vos caméras" in html
    assert message["Date"] and message["Message-ID"] == emails.message_id(7, "secret", EmailSettings().sender)


def test_captured_emails_are_owner_only(tmp_path):
    capture = tmp_path / "mail" / "outbox"
    message = emails.compose_email(alert(), TARGETS, AlertSettings(), EmailSettings(sender="v@v.example"), "secret")
    settings = EmailSettings(capture_dir=capture)
    emails.send_email(settings, message)
    emails.send_email(settings, message)
    files = sorted(capture.iterdir())
    assert len(files) == 2 and all(f.suffix == ".eml" for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE(capture.stat().st_mode) == 0o700 and stat.S_IMODE(capture.parent.stat().st_mode) == 0o700
    parsed = BytesParser(policy=policy.default).parse(files[0].open("rb"))
    assert parsed["To"] == "ops@acme.test" and TARGETS.clip in emails.text_of(parsed)
