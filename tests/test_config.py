import dataclasses
import re
from pathlib import Path

import pytest

from vigint.cli.configfile import load_settings
from vigint.config import DatabaseSettings, Settings, StorageSettings, sections
from vigint.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def defaults(folder: Path, **changes) -> Settings:
    """The default settings as loaded with the default database in `folder`: the data folder is found there."""
    folder = folder.resolve()
    return dataclasses.replace(Settings(), storage=StorageSettings(data_dir=folder / "vigint-data"),
                               paths_from=(folder, "the database's folder"), **changes)


def test_no_config_file_gives_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings == defaults(tmp_path)
    assert settings.database.path == "vigint.db"
    assert settings.source is None


def test_misspelt_key_is_an_error_naming_file_section_and_key(tmp_path):
    config = tmp_path / "config.ini"
    config.write_text("[database]\npaht = /tmp/x.db\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})
    message = str(error.value)
    assert str(config) in message and "[database]" in message and "'paht'" in message


def test_unknown_section_is_an_error(tmp_path):
    config = tmp_path / "config.ini"
    config.write_text("[databse]\npath = x.db\n")
    with pytest.raises(ConfigError, match=r"unknown section \[databse\]"):
        load_settings(config, environ={})


def test_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.ini", environ={})


def test_layers_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "config.ini"
    config.write_text("[database]\npath = from-file.db\n")
    assert load_settings(config, environ={}).database.path == str(tmp_path / "from-file.db")  # beside the file
    environ = {"VIGINT_DATABASE_PATH": "from-env.db"}
    assert load_settings(config, environ=environ).database.path == "from-env.db"
    flags = {("database", "path"): ("from-flag.db", "--db")}
    assert load_settings(config, environ=environ, overrides=flags).database.path == "from-flag.db"
    layered = load_settings(config, environ={**environ, "VIGINT_SERVER_PORT": "6000"}, overrides=flags)
    assert set(layered.origins) == {("database", "path", "flag --db"),
                                    ("server", "port", "environment variable VIGINT_SERVER_PORT")}


def test_vigint_db_and_vigint_config_variables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "elsewhere.ini"
    config.write_text("[database]\npath = named.db\n")
    settings = load_settings(environ={"VIGINT_CONFIG": str(config)})
    assert settings.source == config and settings.database.path == str(tmp_path / "named.db")
    assert load_settings(environ={"VIGINT_DB": "short.db"}).database.path == "short.db"


def test_customer_variables_are_not_mistaken_for_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environ = {"VIGINT_API_KEY": "vig_x", "VIGINT_SERVER_URL": "ws://h", "VIGINT_DATABASE_PAHT": "x"}
    with pytest.raises(ConfigError, match="VIGINT_DATABASE_PAHT"):
        load_settings(environ=environ)
    del environ["VIGINT_DATABASE_PAHT"]
    assert load_settings(environ=environ) == defaults(tmp_path)


def test_bad_value_names_where_it_came_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"VIGINT_DATABASE_PATH: \[database\] path: a value is required"):
        load_settings(environ={"VIGINT_DATABASE_PATH": " "})


def test_settings_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().database.path = Path("other.db")  # type: ignore[misc]
    assert isinstance(Settings().database, DatabaseSettings)


def test_example_config_lists_every_setting_with_its_default():
    shown: dict[str, dict[str, str]] = {}
    section = None
    for line in (REPO / "config.example.ini").read_text().splitlines():
        if header := re.fullmatch(r"\[(\w+)\]", line):
            section = shown.setdefault(header[1], {})
        elif line.startswith("# [camera "):
            section = None  # an example of a per-camera section, not a setting with a default
        elif (assignment := re.fullmatch(r"# (\w+) =(?: (.*))?", line)) and section is not None:
            section[assignment[1]] = assignment[2] or ""
    expected = {name: {f.name: "" if f.default is None else str(f.default) for f in dataclasses.fields(kind)}
                for name, kind in sections().items()}
    assert shown == expected


def test_camera_sections_tune_one_camera(tmp_path):
    config = tmp_path / "config.ini"
    config.write_text("[motion]\nsensitivity = 1.2\n[camera 5/front door]\nsensitivity = 2\n"
                      "masks = 0,0,1,0.15; 0.8,0.5,0.2,0.5\n")
    settings = load_settings(config, environ={})
    front = settings.camera(5, "front door")
    assert front.sensitivity == 2 and front.masks == ((0, 0, 1, 0.15), (0.8, 0.5, 0.2, 0.5))
    assert settings.camera(5, "back").sensitivity == 1.2 and settings.camera(5, "back").masks == ()


def test_bad_camera_sections_name_the_section_and_key(tmp_path):
    config = tmp_path / "config.ini"
    for body, message in [("masks = 0,0,2,1", r"\[camera 5/door\] masks: '0,0,2,1' is not"),
                          ("sensitivty = 2", r"unknown key 'sensitivty' in section \[camera 5/door\]"),
                          ("sensitivity = 50", r"\[camera 5/door\] sensitivity: 50.0 is outside")]:
        config.write_text(f"[camera 5/door]\n{body}\n")
        with pytest.raises(ConfigError, match=message):
            load_settings(config, environ={})


def test_a_retired_setting_is_ignored_with_a_warning(tmp_path, caplog):
    config = tmp_path / "config.ini"
    config.write_text("[buffers]\nshort_buffer_seconds = 3\n[server]\nmax_decode_backlog = 60\n")
    assert load_settings(config, environ={}) == defaults(Path.cwd(), source=config)
    assert "short_buffer_seconds is ignored" in caplog.text
    assert "[server] max_decode_backlog is ignored: the decode backlog is measured in seconds" in caplog.text


@pytest.mark.parametrize("value, message", [
    ("s3://", "names no valid bucket"),
    ("s3:///prefix", "names no valid bucket"),
    ("s3://Not_A_Bucket/x", "names no valid bucket"),
    ("gs://bucket/clips", "unknown scheme 'gs'"),
    ("s3://bucket/a//b", "must not hold empty"),
])
def test_a_bad_clips_location_is_refused_at_load_naming_the_setting(tmp_path, value, message):
    config = tmp_path / "config.ini"
    config.write_text(f"[storage]\nclips = {value}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{config}: [storage] clips: ") + ".*" + re.escape(message)):
        load_settings(config, environ={})


def test_clips_may_be_a_folder_or_s3_and_s3_settings_fall_back_to_aws_variables(tmp_path):
    from vigint.locations import S3Location, clips_location

    aws = {"AWS_ENDPOINT_URL": "http://other:1", "AWS_ENDPOINT_URL_S3": "http://minio.lan:9000",
           "AWS_DEFAULT_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "AKIAFROMENV",
           "AWS_SECRET_ACCESS_KEY": "from-env-secret", "AWS_SESSION_TOKEN": "from-env-token"}
    config = tmp_path / "config.ini"
    config.write_text("[storage]\nclips = s3://cams/site-a/\ns3_region = garage\n")
    storage = load_settings(config, environ=aws).storage
    assert clips_location(storage.clips) == S3Location("cams", "site-a")
    assert (storage.s3_endpoint, storage.s3_region) == ("http://minio.lan:9000", "garage")  # the named setting wins
    assert (storage.s3_access_key_id, storage.s3_secret_access_key, storage.s3_session_token) == (
        "AKIAFROMENV", "from-env-secret", "from-env-token")
    named = load_settings(config, environ={**aws, "VIGINT_STORAGE_S3_SECRET_ACCESS_KEY": "named-secret"})
    assert named.storage.s3_secret_access_key == "named-secret"
    assert clips_location("/srv/clips") == Path("/srv/clips") and clips_location("") is None
    text = repr(load_settings(config, environ=aws))
    assert "from-env-secret" not in text and "from-env-token" not in text and "AKIAFROMENV" not in text
    assert "s3://cams/site-a/" in text  # the location itself is no secret


def test_credentials_in_the_endpoint_url_are_refused_without_being_echoed(tmp_path):
    with pytest.raises(ConfigError, match="not in the URL") as error:
        load_settings(None, environ={"AWS_ENDPOINT_URL": "https://AKIA:hunter2@s3.example.com"})
    assert "hunter2" not in str(error.value)
    with pytest.raises(ConfigError, match="is not http"):
        load_settings(None, environ={"VIGINT_STORAGE_S3_ENDPOINT": "s3.example.com"})


def test_relative_paths_start_from_the_database_folder_whatever_the_current_folder(tmp_path, monkeypatch):
    site, elsewhere = tmp_path / "srv", tmp_path / "elsewhere"
    site.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (site / "config.ini").write_text("[storage]\ndata_dir = data\nclips = archive\n[email]\ncapture_dir = mail\n")
    settings = load_settings(environ={"VIGINT_DB": str(site / "vigint.db")})  # its config.ini is found beside it
    assert settings.source == site / "config.ini"
    assert settings.storage.data_dir == site / "data" and settings.storage.clips == str(site / "archive")
    assert settings.email.capture_dir == site / "mail" and settings.paths_from == (site, "the database's folder")
    flagged = load_settings(environ={}, overrides={("database", "path"): ("../srv/vigint.db", "--db"),
                                                   ("server", "tls_cert"): (Path("cert.pem"), "--tls-cert")})
    assert flagged.storage.data_dir == site / "data"  # --db is typed from the current folder, so is a flag's file
    assert flagged.server.tls_cert == elsewhere / "cert.pem"
    postgres = load_settings(site / "config.ini", environ={"VIGINT_DB": "postgresql://db.example/vigint"})
    assert postgres.storage.data_dir == site / "data" and postgres.paths_from == (site, "the config file's folder")
    assert load_settings(environ={}).storage.data_dir == elsewhere / "vigint-data"  # no database named: here
