"""A camera's live view in Debian's Chromium (see test_browser.py), in a phone-sized window: a camera streams
in real time with one keyframe every 10 s; the customer opens its live page mid-GOP, and the picture comes at
once from the last keyframe, then plays at the live edge."""

import asyncio
import time

import pytest
from footage import make_footage, open_stream, send_video
from helpers import REALTIME, add_client, eventually, url
from test_browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, chromium

from vigint.web.access import new_sign_in_link

NO_CHROMIUM = "needs Debian's chromium and chromium-driver (.ci/run installs them)"
pytestmark = [pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=NO_CHROMIUM),
              REALTIME]  # its assertions hold latencies
GOP_SECONDS = 10
WATCH_SECONDS = 6
# The video's state, and the time since the page's navigation began (ms)
STATE = """const video = document.querySelector('video');
return {readyState: video ? video.readyState : -1, currentTime: video ? video.currentTime : 0,
        since: performance.now(), status: document.getElementById('lag').textContent,
        error: video && video.error && video.error.message};"""


def watch(sign_in_link: str, live_page: str, media_time) -> dict:
    """Sign in, open the live page; return when the first picture came (s after navigation began) and samples
    of (media time sent, currentTime, wall time) each second for WATCH_SECONDS once it plays."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    driver = chromium()
    seen = {"samples": []}
    try:
        driver.get(sign_in_link)
        driver.find_element(By.ID, "sign-in").click()
        WebDriverWait(driver, 15).until(lambda _: "/sign-in/" not in driver.current_url)
        driver.get(live_page)
        state = driver.execute_script(STATE)
        while state["readyState"] < 2 and state["since"] < 15_000:
            time.sleep(0.02)
            state = driver.execute_script(STATE)
        seen["first_picture"] = state["since"] / 1000
        state = WebDriverWait(driver, 10).until(
            lambda _: (found := driver.execute_script(STATE))["readyState"] >= 3 and found)
        seen["ready"] = state
        for _ in range(WATCH_SECONDS + 1):
            state = driver.execute_script(STATE)
            seen["samples"].append((media_time(), state["currentTime"], time.monotonic()))
            time.sleep(1)
        seen["status"] = driver.find_element(By.ID, "lag").text
        driver.save_screenshot(str(ARTIFACTS / "live.png"))
        seen["console"] = [entry["message"] for entry in driver.get_log("browser")]
    finally:
        driver.quit()
    return seen


@pytest.mark.slow  # 12 s of real time on the serial realtime worker, the default suite's critical path
async def test_a_live_view_starts_within_a_second_mid_gop_and_plays_at_the_live_edge(start):
    server = await start()
    client_id, _, key = await add_client(server.store)
    video = make_footage(GOP_SECONDS + WATCH_SECONDS + 12, gop_seconds=GOP_SECONDS, width=320, height=180)
    connection, _ = await open_stream(url(server), key, camera="shop")
    began = time.time()
    sending = asyncio.create_task(send_video(connection, video, int(began * 1_000_000), speed=1))
    await eventually(lambda: server.streams.of_client(client_id).get("shop"))
    await asyncio.sleep(2)  # the page opens 2 s after the stream's only keyframe so far
    base = f"http://127.0.0.1:{server.page.port}"
    link = await new_sign_in_link(server.store, server.settings.web, base, client_id)
    try:
        seen = await asyncio.to_thread(watch, link, f"{base}/cameras/shop", lambda: time.time() - began)
    finally:
        sending.cancel()
        await connection.close()
    assert seen["first_picture"] < 1.0, seen  # mid-GOP: from the ring's keyframe, not the next one
    assert seen["ready"]["readyState"] >= 3 and seen["ready"]["error"] is None, seen
    first = seen["samples"][0]
    last = seen["samples"][-1]
    assert 0.9 < (last[1] - first[1]) / (last[2] - first[2]) < 1.1, seen  # the picture moves at real time
    lags = [sent - shown for sent, shown, _ in seen["samples"]]
    assert max(lags) <= 1.5 and min(lags) > 0, lags  # currentTime: the stream's time, just behind the sender
    assert "live · " in seen["status"] and " s behind" in seen["status"], seen
    violations = [message for message in seen["console"] if "Content Security Policy" in message]
    assert violations == [], seen["console"]


def watch_widths(sign_in_link: str, live_page: str, seconds: float) -> list[tuple[float, int]]:
    """Sign in, open the live page; return (when its page was opened, the video's width: 0 while none) every
    0.2 s for `seconds`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    driver = chromium()
    widths = []
    try:
        driver.get(sign_in_link)
        driver.find_element(By.ID, "sign-in").click()
        WebDriverWait(driver, 15).until(lambda _: "/sign-in/" not in driver.current_url)
        driver.get(live_page)
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            widths.append(tuple(driver.execute_script(
                "const video = document.querySelector('video');"
                "return [performance.timeOrigin, video ? video.videoWidth : 0];")))
            time.sleep(0.2)
    finally:
        driver.quit()
    return widths


@pytest.mark.slow  # 14 s of real time
async def test_a_camera_changing_its_resolution_is_watched_again_at_its_new_size(start):
    server = await start()
    client_id, _, key = await add_client(server.store)
    connection, _ = await open_stream(url(server), key, camera="shop")
    began = time.time()
    small = make_footage(5, gop_seconds=1, width=320, height=180)
    large = make_footage(12, gop_seconds=1, width=480, height=270)

    async def send() -> None:
        await send_video(connection, small, int(began * 1_000_000), speed=1)
        await send_video(connection, large, int((began + 5) * 1_000_000), speed=1)

    sending = asyncio.create_task(send())
    await eventually(lambda: server.streams.of_client(client_id).get("shop"))
    base = f"http://127.0.0.1:{server.page.port}"
    link = await new_sign_in_link(server.store, server.settings.web, base, client_id)
    try:
        widths = await asyncio.to_thread(watch_widths, link, f"{base}/cameras/shop", 13)
    finally:
        sending.cancel()
        await connection.close()
    # The view ended with the first picture; the page opened again, on the new one (a new init segment: a
    # browser need not take a new size under the first one)
    opened = sorted({origin for origin, _ in widths})
    assert len(opened) == 2, widths
    assert {width for origin, width in widths if origin == opened[0]} - {0} == {320}, widths
    assert [width for _, width in widths[-5:]] == [480] * 5, widths
