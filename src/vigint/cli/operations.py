"""`vigint serve`, `vigint demo` and `vigint cert`: running the server, trying it out, and its first TLS pair.

The server, the demo and TLS certificates import PyAV, numpy, websockets or cryptography: their handlers
import them when run, so `vigint --help` and the admin commands start fast (the one-file executable
unpacks itself at every start, and every second counts there).
"""

import asyncio
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from vigint import __version__, protocol
from vigint.cli.commands import Commands, is_new_database, open_store, option
from vigint.cli.settings import overridden, paths_from
from vigint.config import Settings
from vigint.store import Store
from vigint.words import plural

if TYPE_CHECKING:
    from vigint.serve.server import Server

log = logging.getLogger(__name__)
commands = Commands()
OFF_SEPARATOR = "\n" + " " * len("  off        ")  # one line each, under the first


@commands.command("serve", "run the server: authenticated camera streams, decoding, analysis",
                  option("--host", help="address to listen on (default: [server] host, 127.0.0.1)"),
                  option("--port", type=int,
                         help="TCP port (default: [server] port, 5002; 0 picks a free one)"),
                  option("--web-port", type=int, help="TCP port of the customers' page (default: [web] port, "
                         "5003; 0 picks a free one)"),
                  option("--tls-cert", type=Path, help="PEM certificate chain: serve wss:// and https://"),
                  option("--tls-key", type=Path, help="PEM private key for --tls-cert"),
                  option("--insecure", action="store_true", help="serve without TLS on a non-loopback "
                         "address without the warning (TLS ends at a proxy in front)"))
async def serve(args, settings: Settings, console: Console) -> int:
    from vigint.serve.server import Server

    if not settings.server.tls_cert and not args.insecure and not _loopback(settings.server.host):
        log.warning("serving %s without TLS: API keys, video and sign-in links cross the network readable by "
                    "anyone on the way; set [server] tls_cert and tls_key (`vigint cert` makes a pair), or "
                    "pass --insecure when a TLS proxy in front ends TLS", settings.server.host)

    logging.getLogger("vigint.websockets").setLevel(logging.WARNING)  # one line per connection is ours
    # From the start: a SIGTERM during start-up drains too, not a traceback.
    stop_requested = _on_stop_signals()
    new = is_new_database(settings)
    # A data folder that moved, or an older relative one:
    if not new and not settings.storage.data_dir.exists():
        log.warning("the database exists but its data folder %s does not (%s): it is made now, with a new "
                    "clip-link secret unless [alerts] link_secret is set, so links already sent stop "
                    "working; if its clips and secret are elsewhere, stop and name that folder with "
                    "[storage] data_dir",
                    settings.storage.data_dir, paths_from(settings))
    async with await open_store(settings, create=True) as store:
        server = Server(settings, store)
        await server.start()
        log.info("serving streams on %s:%d and the customers' page on port %d", settings.server.host,
                 server.port, server.page.port)
        console.print(await _serving(settings, server, store, new), highlight=False, soft_wrap=True,
                      markup=False)
        await stop_requested.wait()
        console.print(f"Draining: /healthz answers 503 and new streams are refused for up to "
                      f"{settings.server.drain_seconds:g} s, then open ones close…", highlight=False)
        await server.drain()
        console.print("Shutting down: closing streams and writing usage…", highlight=False)
        await server.stop()
    console.print("Stopped.", highlight=False)
    return 0


async def _serving(settings: Settings, server: "Server", store: Store, new: bool) -> str:
    """Return what `vigint serve` prints once started: where it listens, its page, database, data, settings,
    what is off and its open-file limit."""
    from vigint.web.access import page_url

    scheme = "wss" if server.tls else "ws"
    clients = "new: created now" if new else plural(await store.count_clients(), "client")
    return (f"Vigint {__version__} serving\n"
            f"  listening  {scheme}://{settings.server.host}:{server.port}{protocol.PATH} "
            f"(TLS {'on' if server.tls else 'off'}; /healthz and /metrics on the same port)\n"
            f"  page       {page_url(settings, server.page.port)}/ (customers sign in with a link from "
            "`vigint client link`)\n"
            f"  database   {store.name} ({clients})\n"
            f"  data       {settings.storage.data_dir} (clip-link secret, clips unless [storage] clips "
            f"says otherwise); {paths_from(settings)}\n"
            f"  settings   {settings.source or 'embedded defaults'}; overridden: "
            f"{', '.join(overridden(settings)) or 'none'} (`vigint config show` lists all)\n"
            f"  off        {OFF_SEPARATOR.join(switched_off(settings)) or 'nothing'}\n"
            f"  files      open-file limit {server.open_file_limit} (one per stream or waiting socket)")


def switched_off(settings: Settings) -> list[str]:
    """What this server does not do as configured, each with the setting that turns it on: said at start,
    because a missing SMTP server otherwise shows only as alert emails that never arrive."""
    off = []
    if not settings.email.smtp_host and settings.email.capture_dir is None:
        off.append("email: no [email] smtp_host, so alerts are recorded (and webhooks sent) but nobody is "
                   "emailed; `vigint email test --to ADDRESS` checks the settings once set")
    if settings.ai.provider == "none":
        off.append("AI check: [ai] provider is none, so every motion is an incident")
    if settings.server.tls_cert is None:
        off.append("TLS: streams and the page are unencrypted ([server] tls_cert and tls_key; `vigint cert`)")
    if not settings.web.public_url and _local_only(settings.server.host):
        off.append(f"the page for customers: emailed links name {settings.server.host}, which customers "
                   "cannot reach (set [web] public_url and [alerts] public_url)")
    return off


def _local_only(host: str) -> bool:
    """Whether links naming `host` work only on this machine: a loopback or unspecified (0.0.0.0) address."""
    return _loopback(host) or host in ("0.0.0.0", "::", "")


def _loopback(host: str) -> bool:
    """Whether `host` reaches this machine only (127.0.0.0/8, ::1, localhost)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# The one-file executable runs the program in a child process and forwards every signal it gets; a Ctrl-C
# reaches both from the terminal, so the child sees one keypress twice, within milliseconds.
SAME_SIGNAL_SECONDS = 1.0


def _on_stop_signals() -> asyncio.Event:
    """Return an event set at the first SIGINT or SIGTERM, for a graceful stop; a second one, a second or more
    later, exits at once."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    first_at = 0.0

    def on_signal() -> None:
        nonlocal first_at
        if not stopping.is_set():
            first_at = loop.time()
            stopping.set()
        elif loop.time() - first_at >= SAME_SIGNAL_SECONDS:
            print("vigint: second signal: exiting now", file=sys.stderr)
            os._exit(130)

    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, on_signal)
    return stopping


@commands.command("demo", "see Vigint work: server, camera, incident and alert, on this machine",
                  description="Run a server, a demo customer and an agent streaming a test pattern, in a "
                              "temporary folder; show the incidents and alert emails as they come. "
                              "Ctrl-C stops.",
                  server_side=False)
async def demo(args, settings: Settings | None, console: Console) -> int:
    from vigint.cli.demo import run_demo

    return await run_demo(console)


@commands.command("cert", "write a self-signed TLS certificate and key for a first deployment",
                  option("--host", dest="cert_host", required=True,
                         help="the name or IP address agents connect to"),
                  option("--out-dir", type=Path, default=Path("."),
                         help="where to write the two files (default: .)"),
                  option("--force", action="store_true", help="replace existing files"))
async def make_cert(args, settings: Settings, console: Console) -> int:
    from vigint.cli import cert

    cert_path, key_path = cert.write_self_signed(args.cert_host, args.out_dir, overwrite=args.force)
    console.print(f"Wrote {cert_path} and {key_path} (private, owner-only) for {args.cert_host}.\n"
                  f"Serve with: vigint serve --tls-cert {cert_path} --tls-key {key_path}\n"
                  f"Agents trust it with: vigint agent --ca-cert {cert_path} …", highlight=False)
    return 0
