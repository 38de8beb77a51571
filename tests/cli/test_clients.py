"""`vigint client delete` while the client's camera streams: the server lets go without an error, and no file of the
client is left behind."""

import asyncio
import logging

from footage import make_scene, open_stream, send_video
from helpers import add_client, eventually, url
from websockets.exceptions import ConnectionClosedError

from vigint.cli.main import main
from vigint.config import MotionSettings, Settings, StorageSettings


async def test_deleting_a_client_while_it_streams_logs_no_error_and_leaves_no_folder(start, tmp_path, db_path, caplog,
                                                                                       monkeypatch):
    caplog.set_level(logging.INFO)
    data = tmp_path / "data"
    server = await start(settings=Settings(storage=StorageSettings(data_dir=data),
                                           motion=MotionSettings(cooldown_seconds=5)))
    client_id, _, api_key = await add_client(server.store)
    connection, _ = await open_stream(url(server), api_key, "shop")
    sending = asyncio.create_task(send_video(connection, make_scene(40, moving=(3, 38)), speed=2))
    await eventually(lambda: (data / "clips" / str(client_id)).exists(), timeout=30)  # an incident is recorded
    monkeypatch.setenv("VIGINT_STORAGE_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    deleting = ["client", "delete", "--client-id", str(client_id), "--yes", "--db", str(db_path)]
    assert await asyncio.to_thread(main, deleting) == 0
    await eventually(lambda: not server.streams.of_client(client_id), timeout=5)
    try:
        await sending
    except ConnectionClosedError as closed:
        assert closed.rcvd.code == 4401  # its key went with it
    await server.desk.drain()
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert not (data / "clips" / str(client_id)).exists()  # nor a still written after the deletion


async def test_a_reactivated_client_whose_agents_have_not_come_back_is_shown_until_one_streams(start, tmp_path,
                                                                                                 db_path, cli):
    server = await start()
    client_id, _, api_key = await add_client(server.store)
    for command in ("revoke", "reactivate"):
        assert (await asyncio.to_thread(cli, "client", command, "--client-id", str(client_id))).code == 0
    listed = (await asyncio.to_thread(cli, "client", "list", "--json")).json()
    assert listed[0]["awaiting_agents_since"] is not None
    assert "no camera back yet" in (await asyncio.to_thread(cli, "client", "list")).out
    connection, welcome = await open_stream(url(server), api_key, "shop")  # its agent's next try
    assert welcome["type"] == "welcome"
    try:
        await server.flush_usage()  # the key's last use, as the server records it every few seconds
        assert (await asyncio.to_thread(cli, "client", "list", "--json")).json()[0]["awaiting_agents_since"] is None
        assert "no camera back yet" not in (await asyncio.to_thread(cli, "client", "list")).out
    finally:
        await connection.close()
