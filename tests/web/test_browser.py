"""The customer's page in a real browser: Debian's Chromium, driven through its ChromeDriver by Selenium.

Footage with a person walking through is streamed to a real server; the customer signs in with the link
`vigint client link` prints, finds the incident with its thumbnail, and plays its clip. Screenshots of each page
are kept in test-artifacts/browser/ (or $VIGINT_TEST_ARTIFACTS) for a person to look at.
"""

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest
from footage import make_footage, open_stream, send_video
from helpers import add_client, eventually, run_vigint, url

from vigint.config import MotionSettings, Settings, StorageSettings

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
ARTIFACTS = Path(os.environ.get("VIGINT_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "browser"
# Flags for a closed machine: no first-run, no calls home, no GPU (see the env notes on Chromium).
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--window-size=430,932")
PLAY_PAST_TWO_SECONDS = """
const [video, done] = [document.querySelector('video'), arguments[arguments.length - 1]];
video.muted = true;
const report = () => done({readyState: video.readyState, currentTime: video.currentTime,
                           error: video.error && video.error.message});
video.addEventListener('timeupdate', () => { if (video.currentTime > 2.2) report(); });
video.play().catch(error => done({error: String(error)}));
setTimeout(report, 30000);
"""


def chromium():
    """A headless Chromium driven by its ChromeDriver, keeping the page's console messages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations are reported there
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(15)  # an element is looked for until the page that has it has loaded (after a form's POST)
    return driver


def browse(sign_in_link: str, incident_id: int) -> dict:
    """Sign in, look at each page, play the incident's clip; return what the browser saw."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    driver = chromium()
    seen = {}
    try:
        driver.set_script_timeout(45)  # the script gives up first (30 s), reporting what it saw
        driver.get(sign_in_link)
        driver.save_screenshot(str(ARTIFACTS / "sign-in.png"))
        driver.find_element(By.ID, "sign-in").click()  # a form's POST: click does not wait for the next page
        WebDriverWait(driver, 15).until(lambda _: "/sign-in/" not in driver.current_url)
        seen["incidents_url"] = driver.current_url
        thumbnail = driver.find_element(By.CSS_SELECTOR, f'a[href="/incidents/{incident_id}"] img')
        loaded = "return arguments[0].complete ? arguments[0].naturalWidth : 0"
        seen["thumbnail_width"] = WebDriverWait(driver, 15).until(lambda _: driver.execute_script(loaded, thumbnail))
        driver.save_screenshot(str(ARTIFACTS / "incidents.png"))
        thumbnail.click()
        WebDriverWait(driver, 15).until(lambda _: driver.current_url.endswith(f"/incidents/{incident_id}"))
        seen["incident_url"] = driver.current_url
        seen["video"] = driver.execute_async_script(PLAY_PAST_TWO_SECONDS)
        driver.save_screenshot(str(ARTIFACTS / "incident.png"))
        for page in ("cameras", "account"):
            driver.get(sign_in_link.split("/sign-in/")[0] + f"/{page}")
            seen[page] = driver.find_element(By.TAG_NAME, "main").text
            driver.save_screenshot(str(ARTIFACTS / f"{page}.png"))
    finally:
        driver.quit()
    return seen


@pytest.mark.slow  # a browser session of 10 s: CI runs it (pytest -m slow)
async def test_a_customer_signs_in_finds_the_incident_and_plays_its_clip(start, tmp_path):
    # A short cooldown: the incident ends that long after its last motion, unless its camera comes back.
    server = await start(Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                                  motion=MotionSettings(cooldown_seconds=2)))
    client_id, _, key = await add_client(server.store)
    connection, _ = await open_stream(url(server), key, camera="shop-floor")
    await send_video(connection, make_footage(12, gop_seconds=1, people=((3.0, 7.0),), width=320, height=180))
    await connection.close()
    [incident] = await eventually(lambda: server.store.list_incidents(client_id), timeout=20)
    incident = await eventually(lambda: _recorded(server, incident.id), timeout=40)
    printed = await asyncio.to_thread(run_vigint, "client", "link", "--client-id", str(client_id), "--db",
                                      str(server.settings.database.path), cwd=tmp_path,
                                      env={"VIGINT_WEB_PORT": str(server.page.port)})
    link = re.search(r"http://\S+/sign-in/\S+", printed.stdout)[0]
    seen = await asyncio.to_thread(browse, link, incident.id)
    assert seen["incidents_url"].endswith("/incidents")
    assert seen["thumbnail_width"] > 0  # the still loaded
    assert seen["incident_url"].endswith(f"/incidents/{incident.id}")
    video = seen["video"]
    assert video.get("error") is None and video["readyState"] >= 3 and video["currentTime"] > 2, video
    assert "shop-floor" in seen["cameras"] and "1 incident today" in seen["cameras"]
    assert "Usage in" in seen["account"] and "No invoice yet" in seen["account"]


def pick_up(link: str) -> dict:
    """Open a key's hand-over link, show the key, copy the .env lines with the page's button; return what the
    browser saw and what the clipboard holds."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    driver = chromium()
    try:
        driver.execute_cdp_cmd("Browser.grantPermissions", {"permissions": ["clipboardReadWrite",
                                                                            "clipboardSanitizedWrite"]})
        driver.get(link)
        driver.find_element(By.ID, "show-key").click()
        copy = driver.find_element(By.CSS_SELECTOR, 'button[data-copy="env-lines"]')
        seen = {"key": driver.find_element(By.ID, "api-key").get_attribute("value"),
                "copy_shown": copy.is_displayed(), "copy_was": copy.text}
        copy.click()
        try:  # the button changes once the clipboard's write has finished, a moment after the click
            WebDriverWait(driver, 15).until(lambda _: copy.text != seen["copy_was"])
        except TimeoutException:
            pass  # unchanged: the assertion below shows it
        seen["copy_said"] = copy.text
        seen["clipboard"] = driver.execute_async_script(
            "navigator.clipboard.readText().then(arguments[0], e => arguments[0]('unreadable: ' + e))")
        seen["console"] = [entry["message"] for entry in driver.get_log("browser")]
        driver.save_screenshot(str(ARTIFACTS / "key.png"))
    finally:
        driver.quit()
    return seen


async def test_a_customer_copies_a_handed_over_key_with_the_page_s_one_allowed_script(start, tmp_path):
    server = await start()
    client_id, _, _ = await add_client(server.store)
    # A French customer: the script, allowed by its hash, is one in every language; the words are the page's.
    await server.store.update_client(client_id, language="fr")
    printed = await asyncio.to_thread(run_vigint, "key", "create", "--client-id", str(client_id), "--handover",
                                      "--db", str(server.settings.database.path), cwd=tmp_path,
                                      env={"VIGINT_WEB_PORT": str(server.page.port)})
    link = re.search(r"http://\S+/keys/\S+", printed.stdout)[0]
    seen = await asyncio.to_thread(pick_up, link)
    assert seen["copy_shown"] and seen["copy_was"] == "Copier", seen
    assert seen["copy_said"] == "Copié", seen  # the script ran: CSP let it, by its hash
    assert seen["clipboard"] == f"VIGINT_API_KEY={seen['key']}\nVIGINT_SERVER_URL=ws://127.0.0.1:{server.port}"
    assert not [message for message in seen["console"] if "Content Security Policy" in message], seen["console"]


async def _recorded(server, incident_id: int):
    incident = await server.store.get_incident(incident_id)
    return incident if incident.clip_path and incident.stills and incident.ended_at else None
