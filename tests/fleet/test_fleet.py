import asyncio
import dataclasses
import email
import email.policy
import json
import re
import subprocess
import sys
import time

from footage import make_h264, send_video
from helpers import REALTIME, add_client, eventually, url
from websockets.asyncio.client import connect

from vigint.alerts import emails
from vigint.config import AlertSettings, EmailSettings, Settings, StorageSettings, WebSettings
from vigint.fleet.monitor import is_spike


def fleet_settings(tmp_path, **alerts) -> Settings:
    return Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                    email=EmailSettings(capture_dir=tmp_path / "mail"),
                    alerts=AlertSettings(monitor_seconds=0.1, retry_seconds=0.2, max_retry_seconds=0.5,
                                         operator_email="ops@vigint.test", **alerts))


async def stream_from(server, api_key: str, camera: str, address: str = "127.0.0.1"):
    connection = await connect(url(server), local_addr=(address, 0), compression=None)
    await connection.send(json.dumps({"type": "hello", "version": 1, "key": api_key, "camera": camera}))
    assert json.loads(await connection.recv())["type"] == "welcome"
    return connection


async def flags_when(server, condition, timeout: float = 10.0):
    """Poll the stored flags until `condition(flags)` holds; return them."""
    deadline = time.monotonic() + timeout
    while not condition(flags := await server.store.flags()):
        assert time.monotonic() < deadline, f"flags never matched: {flags}"
        await asyncio.sleep(0.05)
    return flags


def mails(tmp_path) -> list[email.message.Message]:
    return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted((tmp_path / "mail").glob("*.eml"))]


def vigint(*args: str, db_path) -> str:
    result = subprocess.run([sys.executable, "-m", "vigint", *args, "--db", str(db_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_a_key_streaming_from_three_addresses_is_flagged_and_a_normal_one_is_not(start, tmp_path, db_path):
    server = await start(settings=fleet_settings(tmp_path))
    leaked_client, leaked_key_id, leaked = await add_client(server.store)
    normal_client, _, normal = await add_client(server.store, "b@b.test", "Beta")
    connections = [await stream_from(server, leaked, f"cam-{i}", f"127.0.0.{i + 1}") for i in range(3)]
    connections += [await stream_from(server, normal, name) for name in ("front", "back")]
    [flag] = await flags_when(server, lambda flags: flags and flags[0].notified_at)
    assert (flag.kind, flag.client_id, flag.key_id) == ("addresses", leaked_client, leaked_key_id)
    assert "3 addresses" in flag.detail and flag.notified_at is not None
    [mail] = [m for m in mails(tmp_path) if m["To"] == "ops@vigint.test"]
    assert "unusual usage: addresses" in mail["Subject"]
    await asyncio.sleep(0.5)
    assert len(await server.store.flags()) == 1  # flagged once, not at every check
    await server.flush_usage()
    listed = {c["id"]: c for c in json.loads(await asyncio.to_thread(vigint, "client", "list", "--json",
                                                                      db_path=db_path))}
    assert listed[leaked_client]["flags"] == ["addresses"] and listed[normal_client]["flags"] == []
    assert listed[normal_client]["live_cameras"] == ["back", "front"]
    fleet = json.loads(await asyncio.to_thread(vigint, "status", "--json", db_path=db_path))
    assert fleet["server_running"] and len(fleet["streams"]) == 5
    assert fleet["clients_streaming"] == sorted([leaked_client, normal_client])
    assert "leaked key?" in await asyncio.to_thread(vigint, "alerts", db_path=db_path)
    for connection in connections:
        await connection.close()


async def test_refused_hellos_flag_the_address(start, tmp_path):
    server = await start(settings=fleet_settings(tmp_path), max_auth_failures=3)
    for _ in range(3):
        async with connect(url(server)) as connection:
            await connection.send(json.dumps({"type": "hello", "version": 1, "key": "vig_nope", "camera": "x"}))
            await connection.wait_closed()
    [flag] = await flags_when(server, lambda flags: flags and flags[0].notified_at)
    assert (flag.kind, flag.subject, flag.client_id) == ("hellos", "address:127.0.0.1", None)
    [mail] = mails(tmp_path)
    assert "127.0.0.1 had 3 hellos refused" in emails.text_of(mail)


def test_spikes_are_measured_against_the_trailing_week():
    week = [10_000_000] * 100  # 10 MB an hour for 100 of the last 168 hours
    assert not is_spike(25_000_000, week, factor=5, floor_bytes=0)  # average 5.95 MB: 25 MB is under 5x
    assert is_spike(600_000_000, week, factor=5, floor_bytes=500e6)
    assert not is_spike(400_000_000, [], factor=5, floor_bytes=500e6)  # a new key under the floor


async def test_a_camera_gone_past_the_threshold_is_reported_down_once_and_back_once(start, tmp_path, database,
                                                                                   mailbox):
    # On PostgreSQL, two nodes check the fleet: the camera streams on the second, and it is still reported once.
    settings = dataclasses.replace(fleet_settings(tmp_path, camera_down_minutes=0.01, link_secret="f" * 64),  # 0.6 s
                                   email=EmailSettings(smtp_host="127.0.0.1", smtp_port=mailbox.port, security="none"),
                                   web=WebSettings(public_url="https://vigint.example"))  # one address for all nodes
    nodes = [await start(settings=settings, database=database)
             for _ in range(2 if database.startswith("postgresql://") else 1)]
    server = nodes[-1]
    client_id, _, api_key = await add_client(server.store)
    await server.store.update_client(client_id, language="fr", timezone="Europe/Paris")
    connection = await stream_from(server, api_key, "door")
    await send_video(connection, make_h264(1))
    await eventually(server.store.cameras)  # the monitor saw the camera live: it can go down from now on
    await connection.close()
    await eventually(lambda: len(mailbox.messages) == 1, timeout=10)
    await asyncio.sleep(1.0)
    assert len(mailbox.messages) == 1  # reported once
    status = json.loads(await asyncio.to_thread(vigint, "status", "--json", db_path=database))
    assert [(c["client_id"], c["camera"]) for c in status["cameras_down"]] == [(client_id, "door")]
    connection = await stream_from(nodes[0], api_key, "door")  # back, on the other node where there are two
    await eventually(lambda: len(mailbox.messages) == 2, timeout=10)
    await asyncio.sleep(1.0)
    down, back = mailbox.messages  # and only those two, in the client's language and time zone, opening its page
    assert down["Subject"] == "[Vigint] door : caméra hors ligne"
    assert back["Subject"] == "[Vigint] door : caméra de nouveau en ligne"
    moment = r"le \d\d/\d\d/\d{4} à \d\d:\d\d:\d\d CES?T\."
    assert re.search(f"La caméra « door » n'envoie plus de vidéo depuis {moment}", emails.text_of(down))
    assert re.search(f"La caméra « door » transmet de nouveau la vidéo depuis {moment}", emails.text_of(back))
    page = "https://vigint.example/cameras"
    for message in (down, back):
        html = message.get_body(("html",)).get_content()
        assert message["Date"] and message["Message-ID"] and f'href="{page}"' in html
        assert f"Voir vos caméras :\r\n{page}\r\n" in emails.text_of(message)
    kinds = [i.type for i in await server.store.list_incidents(client_id)]
    assert sorted(kinds) == ["camera_back", "camera_down"]
    await connection.close()


@REALTIME
async def test_usage_matches_the_bytes_and_seconds_streamed(start, tmp_path):
    server = await start(settings=fleet_settings(tmp_path))
    client_id, key_id, api_key = await add_client(server.store)
    began = time.monotonic()
    connection = await stream_from(server, api_key, "door")
    sent = await send_video(connection, make_h264(3), speed=1)
    await connection.close()
    streamed = time.monotonic() - began
    await eventually(lambda: not server.streams.of_client(client_id))
    await server.flush_usage()  # the stream's last seconds, billed when it ended
    [row] = await server.store.usage_report(client_id, None, None)
    assert row.bytes_received == sent
    assert abs(row.stream_seconds - streamed) <= server.settings.server.usage_flush_seconds + 0.1
