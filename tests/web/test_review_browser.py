"""Marking an incident a false alarm in a real browser (Debian's Chromium through Selenium, a phone-sized
window): the page's form, then the incidents list filtered by review, then `vigint incidents list --json`."""

import asyncio
import json
import time

import pytest
from helpers import add_client, run_vigint
from test_browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, chromium

from vigint.web.access import new_sign_in_link

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


def mark_false_alarm(sign_in_link: str, base: str, incident_id: int) -> dict:
    """Sign in, mark the incident a false alarm with a note, then list the false alarms; return what was
    seen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    driver = chromium()
    seen = {}
    try:
        driver.get(sign_in_link)
        driver.find_element(By.ID, "sign-in").click()
        WebDriverWait(driver, 15).until(lambda _: "/sign-in/" not in driver.current_url)
        driver.get(f"{base}/incidents/{incident_id}")
        driver.find_element(By.NAME, "note").send_keys("the shop's own flag")
        driver.find_element(By.ID, "mark-false-alarm").click()
        seen["review"] = driver.find_element(By.ID, "review").text  # found once the page after the POST loads
        driver.save_screenshot(str(ARTIFACTS / "incident-reviewed.png"))
        driver.get(f"{base}/incidents")
        choice = driver.find_element(By.NAME, "review")
        choice.find_element(By.CSS_SELECTOR, 'option[value="false_alarm"]').click()
        driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
        WebDriverWait(driver, 15).until(lambda _: "review=false_alarm" in driver.current_url)
        seen["listed"] = driver.find_element(By.ID, "incidents").text
        seen["hint"] = driver.find_element(By.ID, "false-alarms").text
        links = driver.find_elements(By.CSS_SELECTOR, "#incidents a")
        seen["links"] = [link.get_attribute("href") for link in links]
        driver.save_screenshot(str(ARTIFACTS / "false-alarms.png"))
    finally:
        driver.quit()
    return seen


@pytest.mark.slow  # a browser session of several seconds: CI runs it (pytest -m slow)
async def test_a_false_alarm_marked_in_chromium_shows_in_the_list_and_the_cli(start, tmp_path):
    server = await start()
    client_id, key_id, _ = await add_client(server.store)
    marked = await server.store.create_incident(client_id, key_id, "shop", time.time() - 120)
    other = await server.store.create_incident(client_id, key_id, "shop", time.time() - 60)
    base = f"http://127.0.0.1:{server.page.port}"
    link = await new_sign_in_link(server.store, server.settings.web, base, client_id)
    seen = await asyncio.to_thread(mark_false_alarm, link, base, marked.id)
    assert seen["review"].startswith("False alarm") and "the shop's own flag" in seen["review"]
    assert f"{base}/incidents/{marked.id}" in seen["links"]
    assert f"{base}/incidents/{other.id}" not in seen["links"]
    assert "False alarm: the shop's own flag" in seen["listed"]
    assert "shop: 1" in seen["hint"] and "draw a mask or lower the sensitivity" in seen["hint"]
    printed = await asyncio.to_thread(run_vigint, "incidents", "list", "--review", "false_alarm", "--json",
                                      "--db", str(server.settings.database.path), cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    [listed] = json.loads(printed.stdout)
    assert listed["id"] == marked.id and listed["review"]["state"] == "false_alarm"
    assert listed["review"]["note"] == "the shop's own flag" and listed["review"]["by"] == "customer"
