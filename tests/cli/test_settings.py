"""`vigint config show|check`, the banner's overridden settings, and the log formats, through the real CLI."""

import json
import os
import signal
import subprocess
import sys

from helpers import run_vigint

from vigint.cli.main import main

SECRET = "0123456789abcdef0123456789abcdef"


def test_config_show_says_where_each_setting_came_from_and_hides_secrets(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.ini").write_text("[server]\nport = 6000\n[alerts]\nlanguage = fr\n")
    monkeypatch.setenv("VIGINT_ALERTS_LINK_SECRET", SECRET)
    monkeypatch.setenv("VIGINT_DB", "postgresql://vigint:hunter2-pw@db.example/vigint")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and "hunter2-pw" not in out
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:4]]
            for line in out.splitlines() if line.count("│") == 4}
    assert rows["server.port"] == ["6000", "config.ini"]
    assert rows["alerts.language"] == ["fr", "config.ini"]
    assert rows["alerts.link_secret"] == ["(hidden)", "environment variable VIGINT_ALERTS_LINK_SECRET"]
    assert rows["database.path"][1] == "environment variable VIGINT_DB"
    assert rows["web.port"] == ["5003", "default"]


def test_config_show_json_round_trips_through_config_check(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIGINT_SERVER_PORT", "6001")
    monkeypatch.setenv("VIGINT_ALERTS_LINK_SECRET", SECRET)
    assert main(["config", "show", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["settings"]["server"]["port"] == 6001 and document["settings"]["alerts"]["link_secret"] is None
    assert document["from"]["server"]["port"] == "environment variable VIGINT_SERVER_PORT"
    (tmp_path / "settings.json").write_text(json.dumps(document))
    checked = run_vigint("config", "check", "settings.json", cwd=tmp_path, env={"VIGINT_SERVER_PORT": ""})
    assert checked.returncode == 0 and "settings.json: valid" in checked.stdout, checked.stderr
    monkeypatch.delenv("VIGINT_SERVER_PORT")
    monkeypatch.delenv("VIGINT_ALERTS_LINK_SECRET")
    assert main(["config", "show", "--json", "--config", "settings.json"]) == 0
    again = json.loads(capsys.readouterr().out)["settings"]
    # the same settings; the database's relative path now starts from the settings file's folder, the same here
    assert again == {**document["settings"], "alerts": {**document["settings"]["alerts"], "link_secret": ""},
                     "database": {"path": str(tmp_path / "vigint.db")}}


def test_config_check_names_the_first_error_and_exits_1(tmp_path):
    (tmp_path / "bad.ini").write_text("[server]\nport = 99999\n[web]\nport = -1\n")
    checked = run_vigint("config", "check", "bad.ini", cwd=tmp_path)
    assert checked.returncode == 1
    assert checked.stderr == "vigint: error: bad.ini: [server] port: 99999 is above the maximum 65535\n"
    (tmp_path / "config.ini").write_text("[motion]\nsensitivity = 0\n")
    checked = run_vigint("config", "check", cwd=tmp_path)  # the file in force by default
    assert (checked.returncode == 1
            and "config.ini: [motion] sensitivity: 0.0 is below the minimum 0.1" in checked.stderr)
    (tmp_path / "typo.json").write_text('{"settings": {"sever": {"port": 1}}}')
    checked = run_vigint("config", "check", "typo.json", cwd=tmp_path)
    assert checked.returncode == 1 and "unknown section [sever]" in checked.stderr


def banner_and_logs(tmp_path, *flags: str, env: dict | None = None) -> tuple[str, str]:
    """Start `vigint serve` with `flags`, read its banner, stop it; return the banner and what it logged."""
    serving = subprocess.Popen([sys.executable, "-m", "vigint", "serve", "--port", "0", "--web-port", "0", *flags],
                               cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    banner = ""
    for line in iter(serving.stdout.readline, ""):
        banner += line
        if "overridden:" in line:
            break
    serving.send_signal(signal.SIGTERM)
    out, err = serving.communicate(timeout=30)
    assert serving.returncode == 0, err
    return banner + out, err


def test_serve_banner_lists_overridden_settings_and_json_logs_parse(tmp_path):
    (tmp_path / "config.ini").write_text("[motion]\npre_roll_seconds = 3\n")
    banner, err = banner_and_logs(tmp_path, "--log-format", "json", "--debug",
                                  env={**os.environ, "VIGINT_ALERTS_LINK_SECRET": SECRET})
    assert "motion.pre_roll_seconds (config.ini)" in banner
    assert "alerts.link_secret (environment variable VIGINT_ALERTS_LINK_SECRET)" in banner
    assert "server.port (flag --port)" in banner and SECRET not in banner + err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert all(line["logger"].startswith("vigint") for line in lines if line["level"] == "debug")


def test_serving_a_network_without_tls_warns_unless_told_a_proxy_ends_it(tmp_path):
    _, err = banner_and_logs(tmp_path, "--host", "0.0.0.0")
    assert "WARNING vigint.cli.operations: serving 0.0.0.0 without TLS" in err and "--insecure" in err
    _, err = banner_and_logs(tmp_path, "--host", "0.0.0.0", "--insecure")
    assert "without TLS" not in err


def test_config_check_warns_about_a_camera_section_of_a_client_that_does_not_exist(tmp_path):
    created = run_vigint("--db", "vigint.db", "client", "create", "--name", "Acme", "--email", "ops@acme.test",
                         "--json", cwd=tmp_path)
    client_id = json.loads(created.stdout)["client_id"]
    (tmp_path / "config.ini").write_text(f"[camera {client_id}/door]\nsensitivity = 2\n[camera 42/yard]\n"
                                         "sensitivity = 0.5\n")
    checked = run_vigint("config", "check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    warning = f"warning: [camera 42/yard] tunes nothing: there is no client 42 in {tmp_path / 'vigint.db'}"
    assert warning in checked.stdout
    assert f"camera {client_id}/door" not in checked.stdout
