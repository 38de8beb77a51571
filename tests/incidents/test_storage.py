"""Clip storage: the local folder and S3 (a real S3 endpoint on loopback: moto's server, see tests/s3.py)."""

import asyncio
import dataclasses
import io
import logging
import stat
import time
from urllib.parse import parse_qs, urlsplit

import av
import pytest
from footage import make_scene
from helpers import REALTIME, add_client, eventually, free_port, link_in
from s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Bucket
from test_incidents import fetch, incident_settings, stream_scene

from vigint.alerts import emails
from vigint.errors import ConfigError
from vigint.incidents import s3
from vigint.incidents.storage import FolderStorage, StorageError, copy_clips, open_clip_storage
from vigint.store import Store


def s3_settings(tmp_path, bucket: Bucket, smtp_port: int, **storage):
    settings = incident_settings(tmp_path, smtp_port)
    return dataclasses.replace(settings, storage=bucket.settings(data_dir=tmp_path / "data", **storage))


@REALTIME  # the whole clip, pre-roll included, needs analysis to keep up with the stream
async def test_a_clip_goes_to_the_bucket_its_signed_link_serves_it_and_retention_removes_it(start, tmp_path, mailbox,
                                                                                          bucket):
    server = await start(settings=s3_settings(tmp_path, bucket, mailbox.port))
    client_id, _, api_key = await add_client(server.store)
    # At 5× real time analysis may lag a second behind receipt before the ring forgets the pre-roll (at 20×,
    # a quarter of a second: a busy test machine missed it)
    await stream_scene(server, api_key, make_scene(20, moving=(7, 10)), speed=5)
    await eventually(lambda: len(mailbox.messages) == 1, timeout=20)
    await server.desk.drain()  # the clip is finished
    [incident] = await server.store.list_incidents(client_id)
    assert incident.clip_path == f"clips/{client_id}/{incident.id}.mp4"  # the same name as in a folder
    objects = await asyncio.to_thread(bucket.objects)
    clip = objects.pop(f"site-a/{client_id}/{incident.id}.mp4")
    assert incident.stills >= 2 and all(jpeg.startswith(b"\xff\xd8\xff") for jpeg in objects.values())
    assert sorted(objects) == [f"site-a/{client_id}/{incident.id}-{index}.jpg" for index in range(incident.stills)]
    with av.open(io.BytesIO(clip)) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 12 * 15  # the whole clip, playable
    assert not (tmp_path / "data" / "clips").exists()  # nothing kept on the node's disk
    assert list((tmp_path / "data" / "clips-growing").rglob("*.*")) == []  # nor where clips grow
    link = link_in(mailbox.messages[0])
    assert await asyncio.to_thread(fetch, link) == (200, clip)
    parts = urlsplit(link)
    forged = f"{parts.scheme}://{parts.netloc}{parts.path}?exp={parse_qs(parts.query)['exp'][0]}&sig={'0' * 64}"
    assert (await asyncio.to_thread(fetch, forged))[0] == 403

    assert await server.retention.delete_expired(time.time() + 29 * 86400) == 0
    assert await server.retention.delete_expired(time.time() + 31 * 86400) == 1
    assert await asyncio.to_thread(bucket.objects) == {} and await server.store.list_incidents(client_id) == []
    assert (await asyncio.to_thread(fetch, link))[0] == 403


async def test_a_failed_upload_leaves_no_object_and_the_incident_is_alerted_without_a_clip(start, tmp_path, mailbox,
                                                                                          bucket, caplog):
    caplog.set_level(logging.DEBUG)
    missing = f"{bucket.name}-missing"
    server = await start(settings=s3_settings(tmp_path, bucket, mailbox.port, bucket_name=missing))
    client_id, _, api_key = await add_client(server.store)
    await stream_scene(server, api_key, make_scene(20, moving=(7, 10)))
    await eventually(lambda: len(mailbox.messages) == 1, timeout=20)
    assert "No clip could be saved" in emails.text_of(mailbox.messages[0])
    [incident] = await server.store.list_incidents(client_id)
    assert incident.clip_path is None and server.metrics.clips_skipped["write_error"] == 1
    assert f"cannot write its clip: cannot upload clip clips/{client_id}/{incident.id}.mp4" in caplog.text
    assert "NoSuchBucket" in caplog.text
    assert not Bucket(bucket.endpoint, missing).exists() and await asyncio.to_thread(bucket.objects) == {}
    status, body = await asyncio.to_thread(fetch, f"http://127.0.0.1:{server.port}/healthz")
    assert (status, body) == (200, b"ok\n")  # still serving
    assert SECRET_ACCESS_KEY not in caplog.text and SECRET_ACCESS_KEY not in repr(server.settings)


def test_an_unreachable_endpoint_is_one_clear_error_without_the_secret(tmp_path, bucket):
    storage = open_clip_storage(dataclasses.replace(bucket.settings(),
                                                    s3_endpoint=f"http://127.0.0.1:{free_port()}"))
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"mp4")
    with pytest.raises(StorageError, match="cannot upload clip clips/3/7.mp4 to s3://") as raised:
        storage.put(source, "clips/3/7.mp4")
    assert SECRET_ACCESS_KEY not in str(raised.value) and SECRET_ACCESS_KEY not in repr(storage)
    assert ACCESS_KEY_ID not in repr(bucket.settings())


def test_client_delete_removes_that_clients_objects_and_no_other(cli, db_path, tmp_path, bucket, monkeypatch):
    # Configured as an operator would: the location in VIGINT_ variables, credentials in AWS's own.
    monkeypatch.setenv("VIGINT_STORAGE_CLIPS", f"s3://{bucket.name}/site-a")
    monkeypatch.setenv("VIGINT_STORAGE_S3_ENDPOINT", bucket.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    storage = open_clip_storage(bucket.settings())
    doomed, kept = cli("client", "create", "--name", "Acme", "--email", "a@a.test", "--json").json(), \
        cli("client", "create", "--name", "Beta", "--email", "b@b.test", "--json").json()
    source = tmp_path / "clip.mp4"

    async def record(client: dict, clip_paths: list[str | None], stills: int = 0) -> None:
        async with await Store.open(db_path) as store:
            for path in clip_paths:
                incident = await store.create_incident(client["client_id"], client["key_id"], "door", 1000.0)
                if path is not None:
                    await store.update_incident(incident.id, clip_path=path, stills=stills)

    d, k = doomed["client_id"], kept["client_id"]
    for name in (f"clips/{d}/1.mp4", f"clips/{d}/1-0.jpg", f"clips/{d}/1-1.jpg", f"clips/{d}/2.mp4",
                 f"clips/{d}/2-0.jpg", f"clips/{d}/2-1.jpg", f"clips/{k}/3.mp4", f"clips/{k}/3-0.jpg"):
        source.write_bytes(name.encode())
        storage.put(source, name)
    asyncio.run(record(doomed, [f"clips/{d}/1.mp4", f"clips/{d}/2.mp4"], stills=2))
    asyncio.run(record(doomed, [None, f"clips/{d}/../{k}/3.mp4"]))  # the last points at the other client's clip
    asyncio.run(record(kept, [f"clips/{k}/3.mp4"], stills=1))
    result = cli("client", "delete", "--client-id", str(d), "--yes")
    assert result.code == 0, result.err
    assert "6 clip files removed" in result.out  # two clips and their stills
    assert bucket.objects() == {f"site-a/{k}/3.mp4": f"clips/{k}/3.mp4".encode(),
                                f"site-a/{k}/3-0.jpg": f"clips/{k}/3-0.jpg".encode()}


def test_copy_clips_copies_a_folders_clips_into_a_bucket_or_a_folder(tmp_path, bucket, caplog):
    folder = tmp_path / "data" / "clips"
    names = ["clips/3/7.mp4", "clips/4/8.mp4"]
    for name in names:
        (folder / name.removeprefix("clips/")).parent.mkdir(parents=True, exist_ok=True)
        (folder / name.removeprefix("clips/")).write_bytes(name.encode() * 1000)
    asked = [*names, "clips/5/9.mp4", "clips/../link-secret"]  # one never written, one not a clip's name
    assert copy_clips(folder, open_clip_storage(bucket.settings(prefix="moved")), asked) == 2
    assert bucket.objects() == {"moved/3/7.mp4": b"clips/3/7.mp4" * 1000, "moved/4/8.mp4": b"clips/4/8.mp4" * 1000}
    assert "clips/5/9.mp4 is not in" in caplog.text and "'clips/../link-secret' is not a clip name" in caplog.text
    target = FolderStorage(tmp_path / "elsewhere")
    assert copy_clips(folder, target, names) == 2
    copied = tmp_path / "elsewhere" / "4" / "8.mp4"
    assert copied.read_bytes() == b"clips/4/8.mp4" * 1000 and stat.S_IMODE(copied.stat().st_mode) == 0o600
    assert target.read("clips/4/8.mp4") == copied.read_bytes()


def test_a_missing_s3_library_is_a_clear_error_naming_the_extra(monkeypatch, bucket):
    monkeypatch.setattr(s3, "Minio", None)  # as when vigint is installed without its s3 extra
    with pytest.raises(ConfigError, match=r"pip install 'vigint\[s3\]'"):
        open_clip_storage(bucket.settings())
