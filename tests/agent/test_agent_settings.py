import logging
import re
import shutil
import subprocess

import pytest

from vigint import keys
from vigint.agent.settings import load_agent_settings, read_env_file, redact, stream_url
from vigint.cli.main import build_parser
from vigint.errors import ConfigError

KEY = keys.generate()


def flags(**given):
    return {"sources": ["test"], **given}


def test_env_file_alone_configures_the_agent(tmp_path):
    (tmp_path / ".env").write_text(f'# mine\nexport VIGINT_API_KEY="{KEY}"\n'
                                   'VIGINT_SERVER_URL=wss://v.example.com:5002 # prod\n')
    (tmp_path / ".env").chmod(0o600)
    settings = load_agent_settings(flags(), environ={}, cwd=tmp_path)
    assert settings.api_key == KEY and settings.server_url == "wss://v.example.com:5002/v1/stream"
    assert settings.cameras[0].name == "test-pattern"
    assert KEY not in repr(settings)


def test_env_file_takes_what_shells_and_docker_write(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# Vigint, from the operator's email\n"
                   "export VIGINT_API_KEY='" + KEY + "'  # site 1\n"
                   "VIGINT_SERVER_URL = \"wss://v.example.com:5002\"\n"
                   "NOTE=\"two\nlines # not a comment\"\n"
                   "ESCAPED=\"tab\\there\"\n"
                   "PRICE='costs $5 ${HOME}'\n"
                   "HASH=a#b\n")
    env.chmod(0o600)
    assert read_env_file(env) == {"VIGINT_API_KEY": KEY, "VIGINT_SERVER_URL": "wss://v.example.com:5002",
                                  "NOTE": "two\nlines # not a comment", "ESCAPED": "tab\there",
                                  "PRICE": "costs $5 ${HOME}", "HASH": "a#b"}


def test_a_line_that_is_not_name_equals_value_is_named(tmp_path):
    env = tmp_path / ".env"
    for text, line in [(f"# key\nVIGINT_API_KEY {KEY}\n", 2), ("VIGINT_API_KEY\n", 1),
                       ('A=1\nB="never closed\nC=3\n', 2)]:
        env.write_text(text)
        with pytest.raises(ConfigError, match=f"^{re.escape(str(env))}, line {line}: expected NAME=value$") as error:
            read_env_file(env)
        assert KEY not in str(error.value)
    env.write_bytes(b"VIGINT_API_KEY=\xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_env_file(env)


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path):
    other, third = keys.generate(), keys.generate()
    (tmp_path / ".env").write_text(f"VIGINT_API_KEY={KEY}\n")
    assert load_agent_settings(flags(), environ={"VIGINT_API_KEY": other}, cwd=tmp_path).api_key == other
    assert load_agent_settings(flags(api_key=third), environ={"VIGINT_API_KEY": other}, cwd=tmp_path).api_key == third


def test_missing_or_mistyped_key_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no API key"):
        load_agent_settings(flags(), environ={}, cwd=tmp_path)
    mistyped = KEY[:-1] + ("a" if KEY[-1] != "a" else "b")
    with pytest.raises(ConfigError, match="mistyped") as error:
        load_agent_settings(flags(api_key=mistyped), environ={}, cwd=tmp_path)
    assert mistyped not in str(error.value)


def test_readable_env_file_is_warned_about(tmp_path, caplog):
    env = tmp_path / ".env"
    env.write_text(f"VIGINT_API_KEY={KEY}\n")
    env.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        read_env_file(env)
    assert "readable by other users" in caplog.text and "chmod 600" in caplog.text
    caplog.clear()
    env.chmod(0o600)
    read_env_file(env)
    assert caplog.text == ""


def test_cameras_get_names_and_bad_ones_are_refused(tmp_path):
    video = tmp_path / "back door.mp4"
    video.write_bytes(b"")
    settings = load_agent_settings({"sources": ["rtsp://u:p@cam1.local/s", str(video), "test"],
                                    "cameras": ["front", None, None], "api_key": KEY}, environ={}, cwd=tmp_path)
    assert [c.name for c in settings.cameras] == ["front", "back-door", "test-pattern"]
    assert "u:p" not in repr(settings.cameras[0])
    with pytest.raises(ConfigError, match="does not exist"):
        load_agent_settings({"sources": [str(tmp_path / "gone.mp4")], "api_key": KEY}, environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="same name"):
        load_agent_settings({"sources": ["test", "test"], "cameras": ["a", "a"], "api_key": KEY}, environ={},
                            cwd=tmp_path)
    with pytest.raises(ConfigError, match="no camera"):
        load_agent_settings({"api_key": KEY}, environ={}, cwd=tmp_path)


def test_urls():
    assert stream_url("ws://127.0.0.1:5002") == "ws://127.0.0.1:5002/v1/stream"
    with pytest.raises(ConfigError, match="wss://"):
        stream_url("https://v.example.com")
    assert redact("rtsp://admin:hunter2@10.0.0.5:554/live") == "rtsp://***@10.0.0.5:554/live"


def test_default_names_do_not_collide(tmp_path):
    settings = load_agent_settings({"sources": ["test", "test", "test"], "cameras": ["test-pattern-2", None, None],
                                    "api_key": KEY}, environ={}, cwd=tmp_path)
    assert [c.name for c in settings.cameras] == ["test-pattern-2", "test-pattern", "test-pattern-3"]


def test_each_camera_flag_names_the_source_before_it():
    args = build_parser().parse_args(["agent", "--source", "test", "--source", "rtsp://cam/x", "--camera", "door"])
    assert (args.sources, args.cameras) == (["test", "rtsp://cam/x"], [None, "door"])


def test_the_spool_sits_beside_the_env_file_unless_told_otherwise(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "agent.env").write_text(f"VIGINT_API_KEY={KEY}\n")
    settings = load_agent_settings(flags(env_file=site / "agent.env"), environ={}, cwd=tmp_path)
    assert settings.spool_dir == site / "spool" and settings.spool_max_mb == 2048
    assert load_agent_settings(flags(api_key=KEY), environ={}, cwd=tmp_path).spool_dir == tmp_path / "spool"
    chosen = load_agent_settings(flags(api_key=KEY, spool_dir=tmp_path / "big-disk", spool_max_mb=50000),
                                 environ={}, cwd=tmp_path)
    assert chosen.spool_dir == tmp_path / "big-disk" and chosen.spool_max_mb == 50000
    with pytest.raises(ConfigError, match="--spool-max-mb"):
        load_agent_settings(flags(api_key=KEY, spool_max_mb=0), environ={}, cwd=tmp_path)


def test_a_missing_ca_cert_is_a_clear_error_before_any_connection(tmp_path):
    with pytest.raises(ConfigError, match="--ca-cert .*server.pem does not exist"):
        load_agent_settings(flags(api_key=KEY, ca_cert=tmp_path / "server.pem"), environ={}, cwd=tmp_path)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_an_env_file_git_would_commit_is_warned_about_and_an_ignored_one_is_not(tmp_path, caplog):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    env = tmp_path / ".env"
    env.write_text(f"VIGINT_API_KEY={KEY}\n")
    env.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        read_env_file(env)  # no work tree here: nothing to say
        assert caplog.text == ""
        git("init", "-q")
        read_env_file(env)
        assert ("sits in a git work tree without being ignored" in caplog.text
                and "echo .env >> .gitignore" in caplog.text)
        caplog.clear()
        (tmp_path / ".gitignore").write_text(".env\n")
        read_env_file(env)
        assert caplog.text == ""
        git("add", "-f", ".env")  # tracked although ignored: the next commit publishes it
        read_env_file(env)
        assert "git rm --cached .env" in caplog.text
