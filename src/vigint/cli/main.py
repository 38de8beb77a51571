"""The `vigint` command line: the common options, settings, and running the chosen command's handler.

Each command group declares its commands beside their handlers in a module of its own (clients, apikeys,
operations, usage, status, review, invoices, incidents, mailing, database, settings, agent); rendering
lives in render.py. A VigintError becomes one line on stderr and its exit code, 1 (3 for an agent the server
refused; a traceback only with --debug); argparse answers bad usage with code 2.
"""

import argparse
import asyncio
import logging
import os
import sys

from rich.console import Console

from vigint import __version__
from vigint.cli import (
    agent,
    apikeys,
    cameras,
    clients,
    database,
    incidents,
    invoices,
    mailing,
    operations,
    review,
    settings,
    status,
    usage,
)
from vigint.cli.commands import common_options
from vigint.cli.configfile import load_settings
from vigint.cli.logs import configure_logging
from vigint.errors import VigintError

log = logging.getLogger("vigint")

# The command groups, in the order `vigint --help` lists their commands.
GROUPS = (clients, apikeys, cameras, operations, usage, status, review, invoices, incidents, mailing,
          database, settings, agent)
# Command-line flags that override a setting, by argparse destination.
FLAG_SETTINGS = {"db": ("database", "path"), "host": ("server", "host"), "port": ("server", "port"),
                 "web_port": ("web", "port"),
                 "tls_cert": ("server", "tls_cert"), "tls_key": ("server", "tls_key")}


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every `vigint` subcommand."""
    parser = argparse.ArgumentParser(prog="vigint", parents=[common_options(defaults=True)],
                                     description="Vigint video security: server, agent and operator tools.")
    parser.add_argument("--version", action="version", version=f"vigint {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    common = common_options(defaults=False)
    for group in GROUPS:
        group.commands.add_to(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `vigint` command line; return the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or bad usage (code 2) after argparse printed it
        return done.code
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    configure_logging(args.debug, getattr(args, "log_format", "text"))
    try:
        loaded = None
        if args.server_side:  # the agent runs at the customer's: no server settings there
            overrides = {target: (getattr(args, flag, None), "--" + flag.replace("_", "-"))
                         for flag, target in FLAG_SETTINGS.items()}
            loaded = load_settings(args.config, overrides=overrides)
        # Piped output is read by people in logs and mail too: wide enough that tables don't wrap keys, unless
        # $COLUMNS says how wide the reader's screen is.
        console = Console() if sys.stdout.isatty() or os.environ.get("COLUMNS") else Console(width=160)
        return asyncio.run(args.handler(args, loaded, console))
    except VigintError as error:
        if args.debug:
            log.exception("failed")
        print(f"vigint: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
