"""How a command is declared: beside its handler, with its options, in a module per command group.

A module makes one `Commands` and decorates each handler with `@commands.command(...)`, naming the
command, its help and its options, so adding a command is one edit in one place; `build_parser` adds
each module's commands in turn. Also here: the options every command takes, and the look-ups that more
than one command group needs.
"""

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from rich.console import Console

from vigint.config import Settings
from vigint.errors import ConfigError
from vigint.store import ApiKey, Node, Store
from vigint.store.engine import is_postgres
from vigint.words import plural

# A command's handler gets the parsed arguments, the server settings (None for a command that runs at the
# customer's, such as the agent) and the console; it returns the exit code.
Handler = Callable[[argparse.Namespace, Settings | None, Console], Awaitable[int]]


@dataclass(frozen=True)
class Option:
    """One option or argument of a command, as `ArgumentParser.add_argument` takes it."""

    flags: tuple[str, ...]
    settings: dict


def option(*flags: str, **settings) -> Option:
    """Return an option for `Commands.command`: the same arguments as `ArgumentParser.add_argument`."""
    return Option(flags, settings)


def common_options(defaults: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after the subcommand's name.

    The top-level parser gives them defaults; a subcommand's copy must not (`defaults=False`), or its
    default would overwrite a value given before the subcommand's name.
    """
    parent = argparse.ArgumentParser(add_help=False)
    default = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    parent.add_argument("--db", default=default(None),
                        help="SQLite database file or postgresql:// URL "
                             "(default: $VIGINT_DB, else [database] path, ./vigint.db)")
    parent.add_argument("--config", type=Path, default=default(None),
                        help="settings file (default: $VIGINT_CONFIG, else ./config.ini when present)")
    parent.add_argument("--debug", action="store_true", default=default(False),
                        help="log Vigint's debug detail and show tracebacks")
    parent.add_argument("--log-format", choices=("text", "json"), default=default("text"),
                        help="log lines for people (text) or one JSON object a line for log shippers (json)")
    return parent


@dataclass(frozen=True)
class _Command:
    name: str
    handler: Handler
    help_text: str
    description: str
    options: tuple[Option, ...]
    listing: bool
    server_side: bool
    epilog: str | None

    def add_to(self, subparsers, common: argparse.ArgumentParser) -> None:
        parents = [common] if self.server_side else []
        # An epilog keeps its lines as written: it holds examples, which argparse would run together.
        formatter = argparse.RawDescriptionHelpFormatter if self.epilog else argparse.HelpFormatter
        sub = subparsers.add_parser(self.name, parents=parents, help=self.help_text,
                                    description=self.description, epilog=self.epilog,
                                    formatter_class=formatter)
        sub.set_defaults(handler=self.handler, server_side=self.server_side)
        if self.listing:
            sub.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
        for declared in self.options:
            sub.add_argument(*declared.flags, **declared.settings)


@dataclass(frozen=True)
class _Group:
    name: str
    help_text: str
    actions: "Commands"

    def add_to(self, subparsers, common: argparse.ArgumentParser) -> None:
        sub = subparsers.add_parser(self.name, help=self.help_text, description=self.help_text)
        self.actions.add_to(sub.add_subparsers(title="actions", metavar="ACTION", required=True), common)


class Commands:
    """The commands of one module, in the order `vigint --help` lists them (the order they are declared)."""

    def __init__(self) -> None:
        self._declared: list[_Command | _Group] = []

    def command(self, name: str, help_text: str, *options: Option, listing: bool = False,
                description: str | None = None, server_side: bool = True, epilog: str | None = None):
        """Declare the decorated handler as command `name`.

        A listing also takes --json. `description` (default: `help_text`) heads the command's own --help, and
        `epilog`, if given, ends it, its lines kept as written (syntax and examples).
        A command that is not `server_side` (the agent, the demo) loads no server settings and so takes
        none of the common options.
        """
        def declare(handler: Handler) -> Handler:
            command = _Command(name, handler, help_text, description or help_text, options, listing,
                               server_side, epilog)
            self._declared.append(command)
            return handler
        return declare

    def group(self, name: str, help_text: str) -> "Commands":
        """Declare a command made of actions (`vigint client create`); return where its actions are
        declared."""
        actions = Commands()
        self._declared.append(_Group(name, help_text, actions))
        return actions

    def add_to(self, subparsers, common: argparse.ArgumentParser) -> None:
        """Add every declared command to `subparsers`, each taking the `common` options."""
        for declared in self._declared:
            declared.add_to(subparsers, common)


def open_store(settings: Settings, create: bool = False) -> Awaitable[Store]:
    """Open the database the settings name (use as `async with await open_store(settings) as store`).

    A SQLite file that does not exist is refused, in one line naming it and how to name the right one, unless
    `create` (`serve`, `client create`): a command run in the wrong folder must not make an empty database and
    report that there are no clients. Raises ConfigError.
    """
    if not create and is_new_database(settings):
        missing = Path(settings.database.path).expanduser().absolute()
        raise ConfigError(f"no database at {missing}: run this where `vigint serve` runs, or name its "
                          "database with --db PATH, $VIGINT_DB or [database] path in config.ini")
    return Store.open(settings.database.path)


def is_new_database(settings: Settings) -> bool:
    """Whether opening the settings' database would create it (a SQLite file that does not exist yet): the
    commands that may create one say so."""
    return not is_postgres(settings.database.path) and not Path(settings.database.path).expanduser().exists()


def check_clips_found(folder: Path | None, names: list[str], settings: Settings) -> None:
    """Refuse, before anything changes, a command about to touch clips `names` that should be in local
    `folder` (None: object storage) when that folder does not exist: a command run with the wrong data folder
    must not report "0 clips removed" and leave them. Raises ConfigError naming the folder and where it was
    found from."""
    if names and folder is not None and not folder.is_dir():
        anchor, named = settings.paths_from or (Path.cwd(), "the current folder")
        raise ConfigError(f"no clips folder at {folder} (relative paths start from {named}, {anchor}), yet "
                          f"{plural(len(names), 'clip file')} should be there: name the data folder with "
                          "[storage] data_dir or the clips with [storage] clips; nothing was changed")


def keys_by_client(keys: list[ApiKey]) -> dict[int, list[ApiKey]]:
    """Group keys by their client, in the order given."""
    grouped: dict[int, list[ApiKey]] = {}
    for key in keys:
        grouped.setdefault(key.client_id, []).append(key)
    return grouped


def last_seen(keys: list[ApiKey]) -> float | None:
    """When any of these keys was last used, or None if never."""
    return max((key.last_used_at for key in keys if key.last_used_at), default=None)


def parse_day(text: str) -> date:
    """Parse a YYYY-MM-DD option; argparse turns the error into a usage error (exit code 2)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-31") from None


def utc_midnight(day: date | None) -> float | None:
    """Return the Unix time a UTC day starts (None for None): the bound of a --since or --until day."""
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def running(nodes: list[Node], settings: Settings, now: float) -> list[Node]:
    """Return the nodes that run now: not stopped, and a snapshot within three flush intervals."""
    return [node for node in nodes
            if node.stopped_at is None and now - node.seen_at < 3 * settings.server.usage_flush_seconds]


async def live_streams(store: Store, settings: Settings, now: float) -> list[dict] | None:
    """The streams of every running node, from their latest snapshots; None if no node runs."""
    nodes = running(await store.nodes(), settings, now)
    if not nodes:
        return None
    return [{**stream, "node": node.id} for node in nodes for stream in node.document["streams"]]
