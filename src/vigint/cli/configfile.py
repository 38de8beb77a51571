"""Reading the settings: layers, later ones winning.

The defaults declared in config.py, then AWS's standard variables for the ``[storage] s3_*`` settings
(``AWS_ACCESS_KEY_ID``…), then ``config.ini`` (``--config``, ``VIGINT_CONFIG`` or ``./config.ini``
when present; a ``.json`` file as ``vigint config show --json`` prints it), then ``VIGINT_<SECTION>_<KEY>``
environment variables, then command-line flags. The settings remember where each value that is not a default
came from (`Settings.origins`), for ``vigint config show`` and the server's banner.

Relative paths are resolved here, once, so that every command finds the same files whatever the folder it runs
in: a path typed as a flag from the current folder; a database path in a config file from that file's folder;
every other path (data_dir, the clips folder, TLS files, capture_dir) from the database file's folder, or the
config file's when the database is PostgreSQL. A server started elsewhere with ``--db /srv/vigint.db`` then
keeps using /srv's data folder and link secret, and ``client delete`` run from anywhere finds the client's
clips. Without ``--config``, a ``config.ini`` beside the database is read when the current folder has none.
"""

import configparser
import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from vigint.config import CameraSettings, Rectangle, Settings, sections
from vigint.errors import ConfigError
from vigint.locations import clips_location
from vigint.store.engine import is_postgres

# Customer-side and bootstrap variables that share the VIGINT_ prefix but are not settings.
NON_SETTING_VARIABLES = frozenset({"VIGINT_API_KEY", "VIGINT_SERVER_URL", "VIGINT_CONFIG", "VIGINT_DB"})
DEFAULT_CONFIG_FILE = Path("config.ini")
# Settings that once existed: a config file that still sets one starts, with a warning, rather than fail.
RETIRED = {
    ("buffers", "short_buffer_seconds"): "analysis keeps no decoded frames beyond its motion background",
    ("server", "max_decode_backlog"): "the decode backlog is measured in seconds of video and shed only when "
                                      "the server is overloaded: see max_decode_backlog_seconds and "
                                      "max_decode_catchup_seconds",
}
CAMERA_SECTION = re.compile(r"camera (\d+)/(.+)")
# The standard variables of AWS tools, read for [storage] s3_* settings that nothing else sets (first found
# wins).
AWS_VARIABLES = {
    "s3_endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "s3_region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "s3_access_key_id": ("AWS_ACCESS_KEY_ID",),
    "s3_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "s3_session_token": ("AWS_SESSION_TOKEN",),
}

log = logging.getLogger(__name__)


def _field_types(section_type: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(section_type)}


def _parse(raw: str, f: dataclasses.Field):
    """Convert one raw text value to the field's type, checking its range; raise ValueError with why."""
    kind = f.type
    text = raw.strip()
    if kind is bool:
        lowered = text.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"{raw!r} is not a yes/no value")
    if kind is Path:
        if not text:
            raise ValueError("a path is required")
        return Path(text).expanduser()
    if kind == Path | None:
        return Path(text).expanduser() if text else None
    if kind is str:
        if not text and f.default:  # a setting with a default has no meaningful empty value
            raise ValueError("a value is required")
        choices = f.metadata["choices"]
        if choices and text not in choices:
            raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
        if f.metadata["check"] is not None:
            f.metadata["check"](text)
        return text
    if kind is Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{raw!r} is not a decimal number") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"{raw!r} must be a finite amount, zero or more")
        return value
    if kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise ValueError(f"{raw!r} is not {noun}") from None
        low = f.metadata["minimum"]
        high = f.metadata["maximum"]
        if low is not None and value < low:
            raise ValueError(f"{value} is below the minimum {low}")
        if high is not None and value > high:
            raise ValueError(f"{value} is above the maximum {high}")
        return value
    raise TypeError(f"unsupported setting type {kind!r}")  # a programming error, not user input


def _apply(values: dict[str, dict[str, object]], section: str, key: str, raw: str, origin: str) -> None:
    if (section, key) in RETIRED:
        log.warning("%s: [%s] %s is ignored: %s", origin, section, key, RETIRED[section, key])
        return
    known = sections()
    if section not in known:
        raise ConfigError(f"{origin}: unknown section [{section}] (known: {', '.join(known)})")
    fields = _field_types(known[section])
    if key not in fields:
        raise ConfigError(f"{origin}: unknown key {key!r} in section [{section}] "
                          f"(known: {', '.join(fields)})")
    try:
        values[section][key] = (_parse(raw, fields[key]), origin)
    except ValueError as error:
        raise ConfigError(f"{origin}: [{section}] {key}: {error}") from None


def _masks(text: str) -> tuple[Rectangle, ...]:
    """Parse "x,y,w,h; x,y,w,h" (fractions of the picture) into rectangles."""
    rectangles = []
    for part in filter(None, (piece.strip() for piece in text.split(";"))):
        try:
            numbers = tuple(float(number) for number in part.split(","))
        except ValueError:
            numbers = ()
        if len(numbers) != 4 or not all(0 <= number <= 1 for number in numbers):
            raise ValueError(f"{part!r} is not x,y,width,height as fractions between 0 and 1")
        rectangles.append(numbers)
    return tuple(rectangles)


def _camera(path: Path, section: str, items: list[tuple[str, str]]) -> CameraSettings:
    match = CAMERA_SECTION.fullmatch(section)
    camera = CameraSettings(int(match[1]), match[2])
    for key, raw in items:
        try:
            if key == "sensitivity":
                value = float(raw)
                if not 0.1 <= value <= 10:
                    raise ValueError(f"{value} is outside 0.1-10")
                camera = dataclasses.replace(camera, sensitivity=value)
            elif key == "masks":
                camera = dataclasses.replace(camera, masks=_masks(raw))
            else:
                raise ConfigError(f"{path}: unknown key {key!r} in section [{section}] "
                                  "(known: sensitivity, masks)")
        except ValueError as error:
            raise ConfigError(f"{path}: [{section}] {key}: {error}") from None
    return camera


def _read_file(path: Path, values: dict[str, dict[str, object]]) -> list[CameraSettings]:
    if path.suffix == ".json":
        return _read_json(path, values)
    parser = configparser.ConfigParser(interpolation=None, default_section="__no_default_section__")
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except configparser.Error as error:
        raise ConfigError(f"{path}: {error.message.splitlines()[0]}") from None
    cameras = []
    for section in parser.sections():
        if CAMERA_SECTION.fullmatch(section):
            cameras.append(_camera(path, section, parser.items(section)))
            continue
        if section not in sections():
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(sections())}, "
                              "camera CLIENT_ID/NAME)")
        for key, raw in parser.items(section):
            _apply(values, section, key, raw, str(path))
    return cameras


def _read_json(path: Path, values: dict[str, dict[str, object]]) -> list[CameraSettings]:
    """Read settings as `vigint config show --json` prints them (its "settings"), or {section: {key: value}}.
    Hidden secrets are null there, and left unset."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not JSON: {error}") from None
    document = document.get("settings", document) if isinstance(document, dict) else document
    if not isinstance(document, dict) or not all(isinstance(keys, dict) for keys in document.values()):
        raise ConfigError(f"{path}: expected {{\"section\": {{\"key\": value}}}}")
    for section, keys in document.items():
        for key, value in keys.items():
            if value is not None:
                text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
                _apply(values, section, key, text, str(path))
    return []


def _read_environment(environ: Mapping[str, str], values: dict[str, dict[str, object]]) -> None:
    for name, raw in environ.items():
        if not name.startswith("VIGINT_") or name in NON_SETTING_VARIABLES:
            continue
        section, _, key = name[len("VIGINT_"):].lower().partition("_")
        if section in sections():
            _apply(values, section, key, raw, f"environment variable {name}")


def _read_aws_variables(environ: Mapping[str, str], values: dict[str, dict[str, object]]) -> None:
    """The lowest layer above the defaults: S3 settings from AWS's own variables, as every S3 tool reads
    them."""
    for key, names in AWS_VARIABLES.items():
        name = next((name for name in names if environ.get(name)), None)
        if name is not None:
            _apply(values, "storage", key, environ[name], f"environment variable {name}")


def config_path(flag: Path | None, environ: Mapping[str, str], database: object = None) -> Path | None:
    """Return the config file to read: the flag, else VIGINT_CONFIG, else ./config.ini if it exists, else the
    config.ini beside `database` (a SQLite file named by --db or VIGINT_DB) if it exists."""
    if flag is not None:
        return flag
    if environ.get("VIGINT_CONFIG"):
        return Path(environ["VIGINT_CONFIG"])
    if DEFAULT_CONFIG_FILE.is_file():
        return DEFAULT_CONFIG_FILE
    if database and not is_postgres(database):
        beside = Path(database).expanduser().absolute().parent / DEFAULT_CONFIG_FILE
        return beside if beside.is_file() else None
    return None


def _anchor(database: str, source: Path | None) -> tuple[Path, str]:
    """Return the folder relative paths start from, and how to name it to an operator."""
    if not is_postgres(database):
        return Path(database).expanduser().resolve().parent, "the database's folder"
    if source is not None:
        return source.expanduser().resolve().parent, "the config file's folder"
    return Path.cwd(), "the current folder: PostgreSQL and no config file"


def _resolve_paths(built: dict[str, object], values: dict[str, dict[str, tuple[object, str]]],
                   source: Path | None) -> tuple[Path, str]:
    """Make every relative path of the `built` sections absolute (see the module's docstring), defaults
    included; return the anchor and its name."""
    database = values["database"].get("path")
    if database and database[1] == str(source) and not is_postgres(database[0]):
        path = str(source.resolve().parent / Path(database[0]).expanduser())
        built["database"] = dataclasses.replace(built["database"], path=path)
    anchor, named = _anchor(built["database"].path, source)
    for name, section in built.items():
        changes = {}
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if (name, f.name) == ("storage", "clips") and isinstance(clips_location(value), Path):
                folder = clips_location(value)
            elif f.type in (Path, Path | None) and value is not None:
                folder = value
            else:
                continue
            base = Path.cwd() if values[name].get(f.name, (None, ""))[1].startswith("flag ") else anchor
            changes[f.name] = base / folder if isinstance(value, Path) else str(base / folder)
        built[name] = dataclasses.replace(section, **changes)
    return anchor, named


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None,
                  overrides: Mapping[tuple[str, str], object] | None = None) -> Settings:
    """Build the settings from defaults, `config_file`, the environment and `overrides`.

    Args:
        config_file: an explicit config file (``--config``); it must exist.
        environ: the environment (default ``os.environ``).
        overrides: values from command-line flags, keyed by (section, key), already typed, each with its flag
            (``(5003, "--web-port")``); a value None is skipped.
    Raises:
        ConfigError: naming the file or variable, the section and the key at fault.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    values: dict[str, dict[str, object]] = {name: {} for name in sections()}
    _read_aws_variables(environ, values)
    database = overrides.get(("database", "path"), (None,))[0] or environ.get("VIGINT_DB")
    path = config_path(config_file, environ, database)
    cameras = _read_file(path, values) if path is not None else []
    if environ.get("VIGINT_DB"):
        _apply(values, "database", "path", environ["VIGINT_DB"], "environment variable VIGINT_DB")
    _read_environment(environ, values)
    for (section, key), (value, flag) in overrides.items():
        if value is not None:
            values[section][key] = (value, f"flag {flag}")
    built = {name: kind(**{key: value for key, (value, _) in values[name].items()})
             for name, kind in sections().items()}
    anchor, named = _resolve_paths(built, values, path)
    origins = tuple((name, key, origin) for name in values for key, (_, origin) in values[name].items())
    return Settings(**built, cameras=tuple(cameras), source=path, origins=origins, paths_from=(anchor, named))
