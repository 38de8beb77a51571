"""Drawing a mask with a finger on a camera's settings page, in Debian's Chromium (see test_browser.py): a
phone-sized window with touch emulation, the camera's live still under the drawing, the page's own script
under its CSP."""

import asyncio
import time

import pytest
from footage import make_scene, open_stream, send_video
from helpers import add_client, eventually, url
from test_browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, chromium
from test_camera_settings import streaming

from vigint.config import MotionSettings, Settings, StorageSettings
from vigint.web.access import new_sign_in_link

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
PICTURE_BOX = """const box = arguments[0].getBoundingClientRect();
return {left: box.left, top: box.top, width: box.width, height: box.height};"""
STILL_LOADED = ("const img = document.querySelector('#editor img'); "
                "return img && img.complete && img.naturalWidth")
# A person crossing the picture from left to right along rows 60-110 of 180 (see footage.make_scene).
WALK = make_scene(4, moving=(1, 3))


def touch(driver, kind: str, x: float, y: float) -> None:
    points = [] if kind == "touchEnd" else [{"x": x, "y": y, "id": 1}]
    driver.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def tap(driver, x: float, y: float) -> None:
    touch(driver, "touchStart", x, y)
    touch(driver, "touchEnd", 0, 0)


def draw_and_save(sign_in_link: str, settings_page: str, between) -> dict:
    """Sign in, open the camera's settings, drag a finger across the picture's middle band (a quarter to three
    quarters of its height, from edge to edge), save, reload, run `between()`; then tap a triangle's corners
    in the top left corner, select the rectangle, remove it, save; return what the browser saw."""
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    driver = chromium()
    seen = {}
    try:
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        driver.get(sign_in_link)
        driver.find_element(By.ID, "sign-in").click()
        WebDriverWait(driver, 15).until(lambda _: "/sign-in/" not in driver.current_url)
        driver.get(settings_page)
        seen["still_width"] = WebDriverWait(driver, 15).until(lambda _: driver.execute_script(STILL_LOADED))
        svg = driver.find_element(By.CSS_SELECTOR, "#editor svg")  # the script ran: it made the drawing layer
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", svg)
        box = driver.execute_script(PICTURE_BOX, svg)
        x0 = box["left"] + 1
        y0 = box["top"] + box["height"] / 4
        touch(driver, "touchStart", x0, y0)
        for step in range(1, 11):
            touch(driver, "touchMove", x0 + (box["width"] - 2) * step / 10, y0 + box["height"] / 2 * step / 10)
        touch(driver, "touchEnd", 0, 0)
        seen["field"] = driver.find_element(By.ID, "masks").get_attribute("value")
        driver.save_screenshot(str(ARTIFACTS / "masks-drawn.png"))
        driver.find_element(By.CSS_SELECTOR, 'button[value="motion"]').click()
        WebDriverWait(driver, 15).until(lambda _: "saved=1" in driver.current_url)
        driver.refresh()
        seen["shapes"] = len(driver.find_elements(By.CSS_SELECTOR, "#editor svg polygon"))
        seen["field_after_reload"] = driver.find_element(By.ID, "masks").get_attribute("value")
        driver.save_screenshot(str(ARTIFACTS / "masks-saved.png"))
        between()
        svg = driver.find_element(By.CSS_SELECTOR, "#editor svg")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", svg)
        box = driver.execute_script(PICTURE_BOX, svg)
        driver.find_element(By.CSS_SELECTOR, 'button[data-mode="polygon"]').click()
        corners = ((0.05, 0.05), (0.2, 0.05), (0.05, 0.2), (0.05, 0.05))  # the first one again closes it
        for x, y in corners:
            tap(driver, box["left"] + box["width"] * x, box["top"] + box["height"] * y)
        driver.find_element(By.CSS_SELECTOR, 'button[data-mode="rectangle"]').click()
        tap(driver, box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)  # select the rectangle
        driver.find_element(By.CSS_SELECTOR, 'button[data-do="remove"]').click()
        seen["field_edited"] = driver.find_element(By.ID, "masks").get_attribute("value")
        driver.execute_script("window.beforeSecondSave = true")  # the page says "Saved." already: the first save's
        driver.find_element(By.CSS_SELECTOR, 'button[value="motion"]').click()
        # a new document has no marker; Chromium may answer "Node ... does not belong to the document" mid-navigation
        gone = WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,))
        loaded = "return document.readyState == 'complete' && !window.beforeSecondSave"
        gone.until(lambda _: driver.execute_script(loaded))
        WebDriverWait(driver, 15).until(lambda _: driver.find_elements(By.CSS_SELECTOR, ".saved"))
        seen["console"] = [entry["message"] for entry in driver.get_log("browser")]
    finally:
        driver.quit()
    return seen


async def walk(server, key: str, camera: str) -> None:
    """Stream WALK as `camera` at twice real time, then end the stream."""
    connection, _ = await open_stream(url(server), key, camera)
    await send_video(connection, WALK, int(time.time() * 1_000_000), 2)
    await asyncio.sleep(0.5)  # the last frames analysed while the stream is open
    await connection.close()


@pytest.mark.slow  # a walk streamed in real time between two browser sessions' steps: CI runs it (pytest -m slow)
async def test_a_mask_drawn_by_touch_on_a_phone_is_stored_shown_again_and_hides_motion_there(start, tmp_path):
    motion = MotionSettings(cooldown_seconds=3, post_roll_seconds=1)
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"), motion=motion))
    client_id, _, key = await add_client(server.store)
    connection = await streaming(server, client_id, key, "shop")
    base = f"http://127.0.0.1:{server.page.port}"
    link = await new_sign_in_link(server.store, server.settings.web, base, client_id)
    loop = asyncio.get_running_loop()
    incidents = {}

    async def walk_past_both_cameras() -> None:
        """Once the band is saved: the same walk past the masked camera and past one without a mask."""
        # A saved setting reaches the node's streams within POLL_SECONDS: the walk starts once it has
        await eventually(lambda: server.streams.of_client(client_id)["shop"].analysis.tuning.masks)
        await connection.close()
        await eventually(lambda: "shop" not in server.streams.of_client(client_id))
        await asyncio.gather(walk(server, key, "shop"), walk(server, key, "door"))
        await eventually(lambda: not server.streams.of_client(client_id))
        await server.desk.drain()
        incidents["cameras"] = sorted(found.camera for found in await server.store.list_incidents(client_id))

    def between() -> None:
        asyncio.run_coroutine_threadsafe(walk_past_both_cameras(), loop).result(timeout=60)

    seen = await asyncio.to_thread(draw_and_save, link, f"{base}/cameras/shop/settings", between)
    assert seen["still_width"] == 320  # the live stream's keyframe, decoded
    band = [float(number) for number in seen["field_after_reload"].split(",")]  # as stored, shown again
    assert seen["shapes"] == 1 and seen["field"] == seen["field_after_reload"], seen
    near = [abs(got - wanted) < 0.02 for got, wanted in zip(band, (0, 0.25, 1, 0.5), strict=True)]
    assert near == [True] * 4, seen
    assert incidents["cameras"] == ["door"]  # the walk under the drawn band opened nothing; the other one did
    [triangle] = (await server.store.camera_setting(client_id, "shop")).masks  # the rectangle removed
    assert len(triangle.points) == 3 and max(x for x, _ in triangle.points) < 0.25, seen
    violations = [message for message in seen["console"] if "Content Security Policy" in message]
    assert violations == [], seen["console"]
