import dataclasses
import re
import stat
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

import pytest

from vigint.alerts import emails, links, outbox
from vigint.config import AlertSettings, EmailSettings, Settings, StorageSettings
from vigint.errors import ConfigError
from vigint.store import Incident

INCIDENT = Incident(7, 3, 1, "entrée", 1_767_225_600.0, None, "motion", "", 1, "clips/3/7.mp4", "not_checked",
                    "pending")


def test_french_email_with_its_link():
    link = links.clip_link("https://v.example:5002", "secret", INCIDENT, 1_767_312_000)
    message = emails.compose_email(INCIDENT, "Boulangerie", "b@b.test", link, 1_767_312_000,
                                   AlertSettings(language="fr"), EmailSettings(sender="alertes@v.example"), "secret", "UTC")
    body = emails.text_of(message)
    assert message["Subject"] == "[Vigint] un mouvement sur entrée, 2026-01-01 00:00:00 UTC"
    assert "Bonjour Boulangerie" in body and link in body and "2026-01-02 00:00:00" in body
    assert link.startswith("https://v.example:5002/clips/7?exp=1767312000&sig=")


def test_links_expire_and_bind_the_incident_and_its_client():
    link = links.clip_link("http://h", "secret", INCIDENT, 2_000)
    signature = link.rsplit("sig=", 1)[1]
    assert links.link_is_valid("secret", INCIDENT, "2000", signature, now=1_999)
    assert not links.link_is_valid("secret", INCIDENT, "2000", signature, now=2_001)
    assert not links.link_is_valid("other", INCIDENT, "2000", signature, now=1_999)
    moved = Incident(**{**INCIDENT.__dict__, "client_id": 4})
    assert not links.link_is_valid("secret", moved, "2000", signature, now=1_999)
    assert not links.link_is_valid("secret", INCIDENT, "2000x", signature, now=1_999)


def test_a_malformed_expiry_or_signature_is_an_invalid_link_not_an_error():
    link = links.clip_link("http://h", "secret", INCIDENT, 2_000)
    signature = link.rsplit("sig=", 1)[1]
    for expires in ("9" * 5000, "-2000", "+2000", " 2000", "2000\n", "2e3", "２０００", "٢٠٠٠", "", "9" * 13):
        assert not links.link_is_valid("secret", INCIDENT, expires, signature, now=1_999), expires
    for bad in ("é" * 64, signature.upper(), signature[:-1], signature + "0", ""):
        assert not links.link_is_valid("secret", INCIDENT, "2000", bad, now=1_999), bad
    assert links.link_is_valid("secret", INCIDENT, "2000", signature, now=1_999)


def test_a_link_secret_is_generated_once_owner_only_and_kept(tmp_path):
    data_dir = tmp_path / "data" / "vigint"
    secret = links.load_link_secret("", data_dir)
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    path = data_dir / "link-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert path.read_text() == secret
    assert links.load_link_secret("", data_dir) == secret  # links sent before a restart keep working
    assert sorted(p.name for p in data_dir.iterdir()) == ["link-secret"]  # no temporary file left
    assert links.load_link_secret("", tmp_path / "other") != secret


def test_a_configured_link_secret_is_used_when_long_enough(tmp_path):
    configured = "correct horse battery staple, 32+"
    assert links.load_link_secret(configured, tmp_path / "data") == configured
    assert not (tmp_path / "data").exists()  # nothing generated beside a configured secret


def test_a_short_configured_link_secret_is_refused_without_showing_it(tmp_path):
    with pytest.raises(ConfigError) as refused:
        links.load_link_secret("hunter2-xyz", tmp_path)
    assert "[alerts] link_secret must be at least 32 characters" in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("content, problem", [("", "is empty"), ("\n  \n", "is empty"),
                                              ("abcdef0123\n", "is too short")])
def test_an_empty_or_truncated_secret_file_stops_the_server(tmp_path, content, problem):
    path = tmp_path / "link-secret"
    path.write_text(content)
    with pytest.raises(ConfigError) as refused:
        links.load_link_secret("", tmp_path)
    message = str(refused.value)
    assert str(path) in message and problem in message and "delete it" in message
    assert "\n" not in message and (not content.strip() or content.strip() not in message)
    assert path.read_text() == content  # never silently replaced: links already sent depend on it


def test_an_unreadable_secret_file_is_a_clear_error(tmp_path):
    (tmp_path / "link-secret").mkdir()
    with pytest.raises(ConfigError) as refused:
        links.load_link_secret("", tmp_path)
    message = str(refused.value)
    assert f"cannot read the clip-link secret {tmp_path / 'link-secret'}: Is a directory" in message
    assert "permissions" in message and "delete it" in message


def test_a_secret_that_cannot_be_written_is_a_clear_error_and_leaves_nothing(tmp_path):
    (tmp_path / "data").write_text("a file where the data folder should be")
    with pytest.raises(ConfigError) as refused:
        links.load_link_secret("", tmp_path / "data" / "vigint")
    assert str(refused.value) == f"cannot write the clip-link secret {tmp_path / 'data' / 'vigint' / 'link-secret'}: " \
                                 "Not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_write_that_fails_midway_leaves_no_partial_secret(tmp_path):
    # A full disk, for real: a 64-byte secret cannot fit in a 1-byte file-size limit (RLIMIT_FSIZE).
    script = (f"import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
              f"resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1)); from pathlib import Path; "
              f"from vigint.alerts import links; links.load_link_secret('', Path({str(tmp_path)!r}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "vigint.errors.ConfigError: cannot write the clip-link secret" in result.stderr
    assert "File too large" in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert re.fullmatch(r"[0-9a-f]{64}", links.load_link_secret("", tmp_path))  # the next start succeeds


def test_captured_emails_are_owner_only(tmp_path):
    capture = tmp_path / "mail" / "outbox"
    message = emails.compose_email(INCIDENT, "Acme", "ops@acme.test", "https://v.example/clips/7?exp=1&sig=2",
                                   1_767_312_000, AlertSettings(), EmailSettings(sender="v@v.example"), "secret")
    settings = EmailSettings(capture_dir=capture)
    emails.send_email(settings, message)
    emails.send_email(settings, message)
    files = sorted(capture.iterdir())
    assert len(files) == 2 and all(f.suffix == ".eml" for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE(capture.stat().st_mode) == 0o700 and stat.S_IMODE(capture.parent.stat().st_mode) == 0o700
    parsed = BytesParser(policy=policy.default).parse(files[0].open("rb"))
    assert parsed["To"] == "ops@acme.test" and "https://v.example/clips/7" in emails.text_of(parsed)


def test_an_offline_incident_says_when_it_was_recorded_and_a_live_one_does_not():
    offline = Incident(**{**INCIDENT.__dict__, "ended_at": INCIDENT.started_at + 425, "offline": True})
    assert emails.offline_note(offline, "en", "UTC") == ("Recorded 2026-01-01 00:00:00–00:07:05 UTC while the camera "
                                                         "was offline; sent once it was back.\n")
    message = emails.compose_email(offline, "Acme", "ops@acme.test", "https://x/clips/7", 1_767_229_200,
                                   AlertSettings(), EmailSettings(), "secret")
    assert "while the camera was offline" in emails.text_of(message)
    assert emails.offline_note(INCIDENT) == ""


def test_an_alert_is_text_and_escaped_html_dated_with_a_message_id_kept_across_attempts():
    hostile = Incident(**{**INCIDENT.__dict__, "camera": "<b>door</b>", "description": "<script>x()</script>"})
    link = "https://v.example/clips/7?exp=1&sig=2"

    def compose(incident):
        message = emails.compose_email(incident, "Acme & Co", "ops@acme.test", link, 1_767_312_000,
                                       AlertSettings(), EmailSettings(sender="alerts@v.example"), "secret")
        return BytesParser(policy=policy.default).parsebytes(bytes(message))  # as the customer's client reads it

    first, again = compose(hostile), compose(hostile)
    assert first["Message-ID"] == again["Message-ID"]  # a retry after a crash is the same message
    assert first["Message-ID"].endswith("@v.example>") and "secret" not in first["Message-ID"]
    assert first["Message-ID"] != compose(Incident(**{**INCIDENT.__dict__, "id": 8}))["Message-ID"]
    assert parsedate_to_datetime(first["Date"]).tzinfo is not None
    text, page = first.get_body(("plain",)).get_content(), first.get_body(("html",)).get_content()
    assert "<script>" in text and "<script>" not in page and "&lt;script&gt;" in page and "Acme &amp; Co" in page
    assert f'href="{link.replace("&", "&amp;")}"' in page
    assert "Threat level" not in text  # no AI ran: no threat level to show
    checked = compose(Incident(**{**INCIDENT.__dict__, "verdict": "confirmed", "threat": 2}))
    assert "Threat level (AI check): 2/2." in checked.get_body(("plain",)).get_content()


def test_times_are_in_the_client_s_time_zone():
    offline = Incident(**{**INCIDENT.__dict__, "ended_at": INCIDENT.started_at + 425, "offline": True})
    message = emails.compose_email(offline, "Acme", "ops@acme.test", "https://x/clips/7", 1_767_229_200,
                                   AlertSettings(), EmailSettings(), "secret", "Europe/Paris")
    text = emails.text_of(message)  # midnight UTC on New Year's Day is 1 a.m. in Paris
    assert message["Subject"].endswith("2026-01-01 01:00:00 CET")
    assert "Recorded 2026-01-01 01:00:00–01:07:05 CET while" in text and "until 2026-01-01 02:00:00 CET" in text
    gone = emails.compose_email(offline, "Acme", "ops@acme.test", "https://x/clips/7", 1_767_229_200,
                                AlertSettings(), EmailSettings(), "secret", "Atlantis/Capital")
    assert gone["Subject"]  # a zone the system no longer knows: the server's, and the alert still goes


def test_a_clip_link_works_as_long_as_the_clip_is_kept_unless_a_lifetime_is_set():
    kept = Settings(storage=StorageSettings(retention_days=30))
    assert outbox.link_expiry(kept, 1_767_225_600.0, now=1_767_300_000) == 1_767_225_600 + 30 * 86400
    week = dataclasses.replace(kept, alerts=AlertSettings(link_ttl_hours=168))
    assert outbox.link_expiry(week, 1_767_225_600.0, now=1_767_300_000) == 1_767_300_000 + 7 * 86400
