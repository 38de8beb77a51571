"""A live view on two nodes sharing one PostgreSQL database: the page's node sends the viewer to the node
that receives the camera."""

from footage import make_footage, open_stream, send_video
from helpers import add_client, url
from test_live import read_start, socket_url
from test_pages import signed_in

from vigint.config import AlertSettings, Settings, StorageSettings

SECRET = "b" * 64  # [alerts] link_secret: the same on every node (it signs the page's cookies too)


async def test_a_viewer_on_node_2s_page_sees_a_camera_streaming_into_node_1(start, postgres_url, tmp_path):
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                        alerts=AlertSettings(link_secret=SECRET))
    first, second = [await start(settings, database=postgres_url) for _ in range(2)]
    for node in (first, second):
        node.base = f"http://127.0.0.1:{node.page.port}"
    client_id, _, key = await add_client(first.store)
    connection, _ = await open_stream(url(first), key, camera="shop")
    await send_video(connection, make_footage(2, gop_seconds=1, width=320, height=180))
    await first.flush_usage()  # its snapshot, with its page's address, as every few seconds
    async with await signed_in(second, client_id) as browser:
        async with browser.get(f"{second.base}/cameras/shop") as page:
            assert str(page.url) == f"{first.base}/cameras/shop" and page.status == 200
            assert 'id="video"' in await page.text()
        async with browser.get(f"{second.base}/cameras/shop/snapshot.jpg") as snapshot:
            assert snapshot.status == 200 and (await snapshot.read())[:2] == b"\xff\xd8"
        async with browser.ws_connect(socket_url(first), origin=first.base) as viewer:
            start_message, media = await read_start(viewer)
            assert start_message["type"] == "start" and media[4:8] == b"ftyp"
        async with browser.get(f"{second.base}/cameras/yard") as unknown:
            assert unknown.status == 404
    await connection.close()
