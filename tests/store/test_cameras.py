"""Camera settings in the store, on both engines: set by whom, checked, audited, one client's only."""

import asyncio
import time

import pytest
from helpers import add_client

from vigint.errors import InvalidInputError, NotFoundError
from vigint.schedule import ALWAYS, parse_schedule
from vigint.store import Editor, Store, copy
from vigint.store.cameras import MAX_CAMERA_SETTINGS
from vigint.tuning import Mask, masks_from_json, parse_rectangle

SHOP_HOURS = "outside Mon-Fri 09:00-18:00, Sat 10:00-16:00"


async def test_a_camera_that_never_streamed_is_set_and_read_back_with_every_setting(database):
    now = time.time()
    street = parse_rectangle("0,0,1,0.25")
    tree = Mask(((0.5, 0.5), (0.9, 0.55), (0.7, 0.95)))
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        assert await store.camera_setting(client_id, "front door") is None
        first = await store.set_camera(client_id, "front door", Editor.CUSTOMER, now, schedule=" outside mon-fri "
                                       "09:00-18:00, sat 10:00 - 16:00", sensitivity=1.5, masks=[street, tree])
        assert first.armed == "schedule" and first.schedule == parse_schedule(SHOP_HOURS)
        assert (first.sensitivity, first.masks, first.muted_until) == (1.5, (street, tree), None)
        read = await store.camera_setting(client_id, "front door")
        assert read == first and read.updated_by is Editor.CUSTOMER and read.updated_at == now
        muted = await store.set_camera(client_id, "front door", Editor.MUTE_LINK, now + 1, muted_until=now + 3600)
        assert muted.muted_until == now + 3600 and muted.schedule == first.schedule and muted.masks == first.masks
        back = await store.set_camera(client_id, "front door", Editor.OPERATOR, now + 2, schedule="always",
                                      sensitivity=None, masks=None, muted_until=None)
        assert (back.armed, back.sensitivity, back.masks, back.muted_until) == ("always", None, None, None)
        assert await store.camera_settings(client_id) == [back]


async def test_every_change_is_audited_with_who_and_what_changed_and_no_change_is_not(database):
    now = time.time()
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        await store.set_camera(client_id, "yard", Editor.OPERATOR, now, schedule="Mon-Sat 20:00-08:00, Sun")
        await store.set_camera(client_id, "yard", Editor.CUSTOMER, now, schedule="mon-sat 20h-8h, dimanche",
                               masks=[parse_rectangle("0,0,0.5,0.5")])  # the same schedule, spelt otherwise
        await store.set_camera(client_id, "yard", Editor.CUSTOMER, now, masks=[parse_rectangle("0,0,0.5,0.5")])
        await store.set_camera(client_id, "porch", Editor.CUSTOMER, now, schedule="always")  # the default already
        entries = [entry for entry in await store.list_audit(client_id) if entry.action == "camera.set"]
        assert [entry.detail for entry in entries] == [  # newest first
            "camera='yard' by=customer: masks: default -> 1 shape",
            "camera='yard' by=operator: schedule: 'always' -> 'Mon-Sat 20:00-08:00, Sun'",
        ]
        assert [setting.camera for setting in await store.camera_settings(client_id)] == ["yard"]


async def test_refused_values_change_nothing_and_say_why(database):
    now = time.time()
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        await store.set_camera(client_id, "gate", Editor.CUSTOMER, now, schedule="Sun", sensitivity=2)
        refusals = [
            ({"schedule": "Mon-Sat 25:00-08:00", "sensitivity": 3}, "25:00 is not a time of day"),
            ({"schedule": "Mon 20:00-08:00, " * 100_000}, "at most 500 characters"),
            ({"sensitivity": float("nan")}, "the sensitivity nan is not a number from 0.1 to 10"),
            ({"sensitivity": 0}, "from 0.1 to 10"),
            ({"sensitivity": float("inf")}, "from 0.1 to 10"),
            ({"masks": [parse_rectangle("0,0,0.1,0.1")] * 33}, "at most 32 masks (this one has 33)"),
            ({"muted_until": now + 8 * 86_400}, "a mute lasts at most 7 days"),
            ({"muted_until": float("nan")}, "a mute lasts at most 7 days"),
            ({}, "nothing to change"),
        ]
        for values, message in refusals:
            with pytest.raises(InvalidInputError) as refused:
                await store.set_camera(client_id, "gate", Editor.CUSTOMER, now + 1, **values)
            assert message in str(refused.value)
        for name in ("", "x" * 65, "../etc", "gate\n", "<script>"):
            with pytest.raises(InvalidInputError, match="camera names are"):
                await store.set_camera(client_id, name, Editor.CUSTOMER, now + 1, schedule="never")
        with pytest.raises(NotFoundError):
            await store.set_camera(client_id + 1000, "gate", Editor.OPERATOR, now + 1, schedule="never")
        [gate] = await store.camera_settings()
        assert (gate.schedule, gate.sensitivity, gate.updated_at) == (parse_schedule("Sun"), 2, now)
        assert len([entry for entry in await store.list_audit() if entry.action == "camera.set"]) == 1


async def test_a_client_sets_only_its_own_cameras_and_deleting_it_takes_them_away(database):
    now = time.time()
    async with await Store.open(database) as store:
        acme, _, _ = await add_client(store)
        other, _, _ = await add_client(store, "ops@other.test", "Other")
        await store.set_camera(acme, "front", Editor.CUSTOMER, now, schedule="never")
        await store.set_camera(other, "front", Editor.CUSTOMER, now, sensitivity=0.5)
        assert (await store.camera_setting(acme, "front")).armed == "never"
        assert (await store.camera_setting(other, "front")).schedule == ALWAYS
        assert [(s.client_id, s.camera) for s in await store.camera_settings()] == [(acme, "front"), (other, "front")]
        await store.delete_client(acme, now)
        assert await store.camera_settings(acme) == [] and len(await store.camera_settings()) == 1


async def test_a_mute_that_ended_unmutes_and_settings_of_many_new_cameras_stop_at_the_limit(database):
    now = time.time()
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        muted = await store.set_camera(client_id, "cam", Editor.CUSTOMER, now, muted_until=now - 5)
        assert muted.muted_until is None and await store.camera_setting(client_id, "cam") is None  # nothing changed
        await asyncio.gather(*(store.set_camera(client_id, f"cam {n}", Editor.OPERATOR, now, schedule="never")
                               for n in range(MAX_CAMERA_SETTINGS + 4)), return_exceptions=True)
        assert len(await store.camera_settings(client_id)) == MAX_CAMERA_SETTINGS
        with pytest.raises(InvalidInputError, match=f"settings for {MAX_CAMERA_SETTINGS} cameras already"):
            await store.set_camera(client_id, "one more", Editor.OPERATOR, now, schedule="never")
        changed = await store.set_camera(client_id, "cam 0", Editor.OPERATOR, now, schedule="always")
        assert changed.armed == "always"  # an existing camera is still changed


async def test_masks_are_stored_as_polygons_in_picture_fractions(database):
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        await store.set_camera(client_id, "tv", Editor.CUSTOMER, masks=[parse_rectangle("0.25,0.5,0.5,0.25")])
        rows = await store._fetch_all("SELECT masks FROM camera_settings")
        assert masks_from_json(rows[0]["masks"]) == (Mask(((0.25, 0.5), (0.75, 0.5), (0.75, 0.75), (0.25, 0.75))),)
        assert rows[0]["masks"] == "[[[0.25,0.5],[0.75,0.5],[0.75,0.75],[0.25,0.75]]]"


async def test_camera_settings_move_up_to_postgresql_as_they_were(db_path, postgres_url):
    now = time.time()
    async with await Store.open(db_path) as source:
        client_id, _, _ = await add_client(source)
        await source.set_camera(client_id, "yard", Editor.CUSTOMER, now, schedule=SHOP_HOURS, sensitivity=0.75,
                                masks=[Mask(((0.1, 0.2), (0.3, 0.2), (0.2, 0.6)))], muted_until=now + 600)
        async with await Store.open(postgres_url) as target:
            await copy.copy_database(source, target)
            assert await target.camera_settings() == await source.camera_settings()


async def test_a_node_reads_a_client_s_cameras_once_then_only_what_changed_since(database):
    async with await Store.open(database) as store:
        client_id, _, _ = await add_client(store)
        other_id, _, _ = await add_client(store, "ops@other.test", "Other")
        later = time.time() + 100  # past the clients' creation, itself a change
        door = await store.set_camera(client_id, "door", Editor.CUSTOMER, later, schedule="never")
        await store.update_client(client_id, later, timezone="Europe/Paris")
        assert await store.watched_cameras(client_id) == ("Europe/Paris", [door])
        assert await store.watched_cameras(other_id) == (None, [])
        assert await store.camera_changes(later + 10) == ({}, [])  # nothing since
        aisle = await store.set_camera(other_id, "aisle", Editor.OPERATOR, later + 20, sensitivity=2)
        await store.update_client(client_id, later + 20, timezone="Asia/Tokyo")
        assert await store.camera_changes(later + 10) == ({client_id: "Asia/Tokyo"}, [aisle])
