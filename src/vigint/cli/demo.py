"""`vigint demo`: the whole product on loopback in one process, for a first look.

A server with embedded defaults in a temporary folder, a demo customer, an agent streaming the built-in
test pattern (a square crossing the picture, so motion), and the incidents and alert emails that result,
captured locally instead of sent. Ctrl-C stops everything and removes the folder.
"""

import asyncio
import email
import email.policy
import signal
import tempfile
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from vigint import config, keys
from vigint.agent import status as agent_view
from vigint.agent.settings import TEST_SOURCE, AgentSettings, Camera
from vigint.agent.status import CameraStatus
from vigint.agent.supervisor import open_spool, run_camera
from vigint.alerts import emails
from vigint.serve.server import Server
from vigint.store import Store
from vigint.tasks import wait_for_event
from vigint.web.access import new_sign_in_link, page_url
from vigint.words import plural

CAMERA = "shop-floor"


async def run_demo(console: Console) -> int:
    """Run the demo until Ctrl-C (or SIGTERM); return the exit code."""
    with tempfile.TemporaryDirectory(prefix="vigint-demo-") as folder:
        root = Path(folder)
        settings = config.Settings(database=config.DatabaseSettings(str(root / "vigint.db")),
                                   server=config.ServerSettings(port=0), web=config.WebSettings(port=0),
                                   storage=config.StorageSettings(data_dir=root / "data"),
                                   email=config.EmailSettings(capture_dir=root / "mail"))
        async with await Store.open(settings.database.path) as store:
            api_key = keys.generate()
            client, _ = await store.create_client("Demo Corner Shop", "owner@shop.example",
                                                  keys.hash_key(api_key), keys.display_prefix(api_key))
            server = Server(settings, store)
            await server.start()
            url = f"ws://127.0.0.1:{server.port}/v1/stream"
            try:
                camera_status = await _stream_and_show(server, client.id, api_key, url, settings, console)
            finally:
                await server.stop()
            if not console.is_terminal:  # once stopped: the alerts sent by then are recorded as delivered
                console.print(await _view(server, client.id, camera_status, url, settings))
    console.print("Demo stopped; its temporary files are gone.")
    return 0


async def _stream_and_show(server: Server, client_id: int, api_key: str, url: str,
                           settings: config.Settings, console: Console) -> CameraStatus:
    """Stream the test pattern and show what the server does with it until stopped; return the camera's
    status."""
    files = settings.storage.data_dir.parent  # the demo's temporary folder
    agent = AgentSettings(api_key=api_key, server_url=url, cameras=(Camera(TEST_SOURCE, CAMERA),),
                          spool_dir=files / "agent-spool")
    camera_status = CameraStatus(CAMERA, "built-in test pattern")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    camera = asyncio.create_task(run_camera(agent.cameras[0], agent, camera_status, stopping,
                                                  open_spool(agent)))
    console.print(f"Vigint demo: server on {url}, client {client_id}, files in {files}\n"
                  "A square crosses the test picture: watch the incident and its alert email appear. "
                  "Ctrl-C stops.", highlight=False)
    link = await new_sign_in_link(server.store, settings.web, page_url(settings, server.page.port), client_id)
    console.print(f"The demo customer's own page (incidents, clips, cameras): open {link} in a browser on "
                  "this machine (a sign-in link: it works once).", highlight=False, soft_wrap=True)
    try:
        with Live(console=console, refresh_per_second=2, transient=not console.is_terminal) as live:
            while not stopping.is_set():
                live.update(await _view(server, client_id, camera_status, url, settings))
                await wait_for_event(stopping, 0.5)
        return camera_status
    finally:
        stopping.set()
        await asyncio.gather(camera, return_exceptions=True)
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


async def _view(server: Server, client_id: int, camera_status: CameraStatus, url: str,
                settings: config.Settings) -> Group:
    incidents = Table(title="Incidents")
    for column in ("ID", "Camera", "Type", "Clip", "Alert"):
        incidents.add_column(column)
    for incident in await server.store.list_incidents(client_id):
        incidents.add_row(str(incident.id), incident.camera, incident.type,
                          "saved" if incident.clip_path else "—", incident.alert_state)
    mails = sorted((settings.email.capture_dir or Path()).glob("*.eml"))
    if mails:
        message = email.message_from_bytes(mails[-1].read_bytes(), policy=email.policy.default)
        body = emails.text_of(message)
        heading = f"[bold]To:[/] {escape(message['To'])}\n[bold]Subject:[/] {escape(message['Subject'])}"
        mail = Panel(f"{heading}\n\n{escape(body)}", title=f"Alert email captured ({len(mails)} so far)")
    else:
        mail = Panel("none yet: the first comes a few seconds after the first incident", title="Alert email")
    frames = server.metrics.frames_decoded
    return Group(agent_view.table([camera_status], url),
                 f"server: {frames} frames decoded, {plural(server.metrics.incidents, 'incident')}, "
                 f"{plural(server.metrics.alerts_delivered, 'alert')} delivered", incidents, mail)
