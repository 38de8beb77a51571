"""`vigint config show` and `vigint config check`: the settings in force and where each came from, and a
settings file checked before a server is restarted with it."""

import dataclasses
import os
from decimal import Decimal
from pathlib import Path

from rich.console import Console

from vigint.cli import render
from vigint.cli.commands import Commands, is_new_database, open_store, option
from vigint.cli.configfile import config_path, load_settings
from vigint.config import Settings, sections
from vigint.errors import ConfigError
from vigint.store.engine import describe, is_postgres
from vigint.words import plural

HIDDEN = "(hidden)"
commands = Commands()
config_commands = commands.group("config", "show the settings in force, or check a settings file")


def shown(settings: Settings) -> list[tuple[str, str, object, str]]:
    """Return (section, key, value, where from) for every setting; a secret that is set is HIDDEN, a database
    URL's password masked."""
    origins = {(section, key): origin for section, key, origin in settings.origins}
    rows = []
    for name in sections():
        values = getattr(settings, name)
        for field in dataclasses.fields(values):
            value = getattr(values, field.name)
            if (name, field.name) == ("database", "path"):
                value = describe(value) if is_postgres(value) else str(value)
            elif not field.repr and value:  # a secret (config.setting)
                value = HIDDEN
            elif isinstance(value, (Path, Decimal)):
                value = str(value)
            rows.append((name, field.name, value, origins.get((name, field.name), "default")))
    return rows


def overridden(settings: Settings) -> list[str]:
    """`section.key (where from)` for each setting not at its default, for the server's banner."""
    return [f"{section}.{key} ({origin})" for section, key, origin in settings.origins]


def paths_from(settings: Settings) -> str:
    """Say which folder relative paths start from, for the banner and `vigint config show`."""
    if settings.paths_from is None:
        return "every path as given"
    anchor, named = settings.paths_from
    return f"relative paths start from {named}, {anchor}"


@config_commands.command("show", "print every setting in force, with where it came from (default, file, "
                         "variable, flag); secrets hidden", listing=True)
async def config_show(args, settings: Settings, console: Console) -> int:
    rows = shown(settings)
    if args.json:
        anchor = settings.paths_from
        document = {"source": str(settings.source) if settings.source else None, "settings": {}, "from": {},
                    "paths_from": {"folder": str(anchor[0]), "which": anchor[1]} if anchor else None}
        for section, key, value, origin in rows:
            document["settings"].setdefault(section, {})[key] = None if value is HIDDEN else value
            document["from"].setdefault(section, {})[key] = origin
        render.print_json(document)
        return 0
    source = settings.source or "the embedded defaults"
    console.print(f"Settings from {source} and the environment; secrets hidden; {paths_from(settings)}.",
                  highlight=False, markup=False)
    console.print(render.table("Settings", ("setting", "value", "from"), [
        (f"{section}.{key}", "" if value is None else str(value), origin)
        for section, key, value, origin in rows]))
    return 0


@config_commands.command("check", "check a settings file (INI, or JSON as `config show --json` prints it): "
                         "exit 1 with the first error",
                         option("file", type=Path, nargs="?",
                                help="the file to check (default: $VIGINT_CONFIG, else ./config.ini)"),
                         server_side=False)
async def config_check(args, settings: Settings | None, console: Console) -> int:
    path = config_path(args.file, os.environ)
    if path is None:
        raise ConfigError("no settings file to check: name one (vigint config check PATH), "
                          "set $VIGINT_CONFIG, or run this where config.ini is")
    checked = load_settings(path, environ={})
    read = plural(len(checked.origins), "setting")
    console.print(f"{path}: valid ({read} read, the others at their defaults).", highlight=False)
    for warning in await _unknown_clients(path, checked):
        console.print(f"warning: {warning}", highlight=False, markup=False)
    return 0


async def _unknown_clients(path: Path, checked: Settings) -> list[str]:
    """Say which `[camera CLIENT_ID/NAME]` sections name a client the database does not hold (deleted, or a
    typo): they tune nothing. The database is the one the file names, with the environment in force; none is
    created."""
    if not checked.cameras:
        return []
    try:
        in_force = load_settings(path)
    except ConfigError:
        return []  # the environment's own errors are `vigint config show`'s to report
    if is_new_database(in_force):
        return ["the [camera …] sections were not checked against a database: "
                f"none at {in_force.database.path}"]
    async with await open_store(in_force) as store:
        clients = {client.id for client in await store.list_clients()}
    return [f"[camera {camera.client_id}/{camera.camera}] tunes nothing: there is no client "
            f"{camera.client_id} in {describe(in_force.database.path)} (deleted, or a typo)"
            for camera in checked.cameras if camera.client_id not in clients]
