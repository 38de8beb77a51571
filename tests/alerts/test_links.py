import re
import stat
import subprocess
import sys

import pytest

from vigint.alerts import links
from vigint.errors import ConfigError
from vigint.store import Incident

INCIDENT = Incident(7, 3, 1, "entrée", 1_767_225_600.0, None, "motion", "", 1, "clips/3/7.mp4", "not_checked",
                    "pending")


def test_an_alert_opens_the_incident_s_page_or_for_a_camera_event_the_cameras_page():
    assert links.page_link("https://vigint.example/", INCIDENT) == "https://vigint.example/incidents/7"
    down = Incident(**{**INCIDENT.__dict__, "type": "camera_down", "clip_path": None})
    assert links.page_link("http://127.0.0.1:5003", down) == "http://127.0.0.1:5003/cameras"


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
