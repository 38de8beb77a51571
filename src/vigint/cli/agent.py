"""`vigint agent`: the customer's side, streaming cameras to the server (vigint.agent does the work).

It runs on the camera host, where there are no server settings, database or config file: it reads its
key and server URL from flags, the environment or a .env file instead. The agent package imports PyAV
and websockets, so the handler imports it when run, keeping `vigint --help` fast.
"""

import argparse
from pathlib import Path

from rich.console import Console

from vigint.cli.commands import Commands, option
from vigint.config import Settings

commands = Commands()


class _SourceAction(argparse.Action):
    """--source appends a source, and an unnamed slot in --camera's list beside it."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.sources = [*(namespace.sources or []), value]
        namespace.cameras = [*(namespace.cameras or []), None]


class _CameraAction(argparse.Action):
    """--camera names the --source just before it."""

    def __call__(self, parser, namespace, value, option_string=None):
        if not namespace.sources or namespace.cameras[-1] is not None:
            parser.error(f"--camera {value}: each --camera follows the --source it names")
        namespace.cameras[-1] = value


@commands.command(
    "agent", "stream cameras to the Vigint server (the customer's side)",
    option("--source", dest="sources", action=_SourceAction, metavar="SRC",
           help="rtsp://… URL, video file, /dev/videoN, or 'test' for a built-in pattern; repeatable"),
    option("--camera", dest="cameras", action=_CameraAction, metavar="NAME",
           help="name of the --source before it (default: from the source)"),
    option("--api-key", help="API key (default: VIGINT_API_KEY)"),
    option("--api-url", help="server URL, e.g. wss://vigint.example.com:5002 (default: VIGINT_SERVER_URL)"),
    option("--env-file", type=Path, help="read settings from this file instead of ./.env"),
    option("--ca-cert", type=Path, help="trust this certificate (a self-signed server)"),
    option("--loop", action="store_true", default=None, help="play video files again and again"),
    option("--bitrate", type=int, help="bits per second when re-encoding a non-H.264 source (2000000)"),
    option("--max-width", type=int, help="re-encoded video is at most this wide (1280)"),
    option("--stall-seconds", type=float, help="reopen a source silent this long (10)"),
    option("--max-backlog-seconds", type=float,
           help="on a slow link, spool whole GOPs beyond this much unsent video, to send later (4)"),
    option("--spool-dir", type=Path,
           help="keep video not sent live here until the server has it "
                "(default: spool/ beside the .env file)"),
    option("--spool-max-mb", type=int,
           help="disk space for unsent video, all cameras together; the oldest goes first (2048)"),
    option("--refused-retry-seconds", type=float,
           help="while the server refuses a key that worked before (a revoked client), "
                "try it again this often (30)"),
    option("--debug", action="store_true", default=argparse.SUPPRESS, help="log debug detail"),
    description="Stream cameras to the Vigint server. Reads VIGINT_API_KEY and VIGINT_SERVER_URL from "
                "./.env, the environment, or the flags below (flags win). Exits 0 once stopped (SIGINT, "
                "SIGTERM) or every file has played, 1 on a setting it cannot use, 3 when the server refuses "
                "a key it never accepted from this agent (a typo) or the agent cannot trust or reach it as "
                "configured (its certificate, ws:// against wss://): retrying cannot help, so a service "
                "manager should not restart it (scripts/vigint-agent.service). A key that worked and is "
                "refused later (a revoked client) is tried again every --refused-retry-seconds, sending and "
                "spooling nothing, until it is accepted.",
    server_side=False)
async def agent(args, settings: Settings | None, console: Console) -> int:
    from vigint.agent.settings import load_agent_settings
    from vigint.agent.supervisor import run_agent

    agent_settings = load_agent_settings(vars(args))
    await run_agent(agent_settings, console)
    return 0
