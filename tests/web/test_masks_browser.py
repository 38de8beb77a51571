"""Drawing a mask with a finger on a camera's settings page, in Debian's Chromium (see test_browser.py): a
phone-sized window with touch emulation, the camera's live still under the drawing, the page's own script
under its CSP."""

import asyncio

import pytest
from helpers import add_client
from test_browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, chromium
from test_camera_settings import streaming

from vigint.config import Settings, StorageSettings
from vigint.web.access import new_sign_in_link

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
PICTURE_BOX = """const box = arguments[0].getBoundingClientRect();
return {left: box.left, top: box.top, width: box.width, height: box.height};"""
STILL_LOADED = ("const img = document.querySelector('#editor img'); "
                "return img && img.complete && img.naturalWidth")


def touch(driver, kind: str, x: float, y: float) -> None:
    points = [] if kind == "touchEnd" else [{"x": x, "y": y, "id": 1}]
    driver.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def tap(driver, x: float, y: float) -> None:
    touch(driver, "touchStart", x, y)
    touch(driver, "touchEnd", 0, 0)


def draw_and_save(sign_in_link: str, settings_page: str) -> dict:
    """Sign in, open the camera's settings, drag a finger from a quarter to three quarters of the picture,
    save, reload; then tap a triangle's corners in the top left corner, select the rectangle, remove it, save;
    return what the browser saw."""
    from selenium.webdriver.common.by import By
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
        x0, y0 = box["left"] + box["width"] / 4, box["top"] + box["height"] / 4
        touch(driver, "touchStart", x0, y0)
        for step in range(1, 11):
            touch(driver, "touchMove", x0 + box["width"] / 2 * step / 10, y0 + box["height"] / 2 * step / 10)
        touch(driver, "touchEnd", 0, 0)
        seen["field"] = driver.find_element(By.ID, "masks").get_attribute("value")
        driver.save_screenshot(str(ARTIFACTS / "masks-drawn.png"))
        driver.find_element(By.CSS_SELECTOR, 'button[value="motion"]').click()
        WebDriverWait(driver, 15).until(lambda _: "saved=1" in driver.current_url)
        driver.refresh()
        seen["shapes"] = len(driver.find_elements(By.CSS_SELECTOR, "#editor svg polygon"))
        seen["field_after_reload"] = driver.find_element(By.ID, "masks").get_attribute("value")
        driver.save_screenshot(str(ARTIFACTS / "masks-saved.png"))
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
        driver.find_element(By.CSS_SELECTOR, 'button[value="motion"]').click()
        WebDriverWait(driver, 15).until(lambda _: driver.find_elements(By.CSS_SELECTOR, ".saved"))
        seen["console"] = [entry["message"] for entry in driver.get_log("browser")]
    finally:
        driver.quit()
    return seen


async def test_a_rectangle_drawn_by_touch_on_a_phone_is_stored_and_shown_again(start, tmp_path):
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data")))
    client_id, _, key = await add_client(server.store)
    connection = await streaming(server, client_id, key, "shop")
    base = f"http://127.0.0.1:{server.page.port}"
    link = await new_sign_in_link(server.store, server.settings.web, base, client_id)
    seen = await asyncio.to_thread(draw_and_save, link, f"{base}/cameras/shop/settings")
    await connection.close()
    assert seen["still_width"] == 320  # the live stream's keyframe, decoded
    rectangle = [float(number) for number in seen["field_after_reload"].split(",")]  # as stored, shown again
    assert seen["shapes"] == 1 and seen["field"] == seen["field_after_reload"], seen
    near = [abs(got - wanted) < 0.02 for got, wanted in zip(rectangle, (0.25, 0.25, 0.5, 0.5), strict=True)]
    assert near == [True] * 4, seen
    [triangle] = (await server.store.camera_setting(client_id, "shop")).masks  # the rectangle removed
    assert len(triangle.points) == 3 and max(x for x, _ in triangle.points) < 0.25, seen
    violations = [message for message in seen["console"] if "Content Security Policy" in message]
    assert violations == [], seen["console"]
