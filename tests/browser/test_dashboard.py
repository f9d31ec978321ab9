"""The dashboard in a real browser (Debian's headless Chromium through selenium) against a running loop.

The service and the CPO simulator run as real servers on 127.0.0.1, registered with each other (the
e2e `Loop`); EVs at one site exceed its limit, one charge point applies less than asked (the
simulator's APPLY_LOWER fault). The test opens the dashboard as a person would, types the key, and
checks what that person would: the chart's limit and load at "now", data in the past part, the
UNDER_PLAN session highlighted, the profiles sent in the commands panel, and that no request left
127.0.0.1. Screenshots go to `$SCSP_ARTEFACTS` (default `build/test-artefacts`); with
`SCSP_UPDATE_SCREENSHOT=1` the last one also replaces `docs/dashboard.png`.

Chromium and chromedriver come from apt (`.ci/run` installs them): without them the test fails,
it does not skip.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from scsp.api.auth import issue_api_key
from scsp.records.grid import ApiRole
from tests.e2e.test_smart_charging import WORK, Loop

pytestmark = pytest.mark.e2e

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = Path(os.environ.get("SCSP_ARTEFACTS", ROOT / "build" / "test-artefacts"))
LIMIT_W = 20_000.0
SITE = f"NL-SIM-{WORK}"


def find_browser() -> tuple[str, str]:
    """Debian's chromium and chromedriver (never a download)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists()
                                              else None)
    if browser is None or driver is None:
        pytest.fail("the browser test needs Debian's chromium and chromium-driver: "
                    "apt-get install -y chromium chromium-driver")
    return browser, driver


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    binary, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800", "--lang=en-GB", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-default-apps", "--disable-sync"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # The driver's path is given, so selenium's manager neither looks for nor downloads one.
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    running = Loop(tmp_path)
    yield running
    running.close()


def eventually(check: Callable[[], T], *, timeout: float, what: str) -> T:
    """Poll until `check()` is truthy (a deadline, not a speed test)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except AssertionError as exc:
            last, value = exc, None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}" + (f": {last}" if last else ""))


def shot(chrome: WebDriver, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"dashboard-{name}.png"
    chrome.save_screenshot(str(path))
    return path


def dashboard_state(chrome: WebDriver) -> dict[str, Any] | None:
    """What the page drew last: the chart's columns at each time and the moment it took as now."""
    state: dict[str, Any] | None = chrome.execute_script(
        "const d = window.scspDashboard; return d ? {site: d.site, now: d.now, data: d.data, series: d.series} : null;")
    return state


def column(state: dict[str, Any], label: str) -> list[float | None]:
    values: list[float | None] = state["data"][1 + state["series"].index(label)]
    return values


def test_the_dashboard_shows_limit_load_history_compliance_and_commands(loop: Loop, browser: WebDriver) -> None:
    loop.grid(WORK, LIMIT_W, failsafe_w=6_000)
    # Three EVs of 11 kW against 20 kW: curtailed, and each still above the 6 A minimum (no turn-taking,
    # so the faulty charge point's session is planned above zero and its shortfall shows).
    evses = [e for e in loop.state()["evses"] if e["location_id"] == WORK and e["charging_profile_capable"]][:3]
    sessions = [loop.plug(WORK, e["uid"], kwh=30.0, max_kw=11.0) for e in evses]
    # One charge point applies half of what it is asked: its session is UNDER_PLAN.
    loop.faults([{"kind": "APPLY_LOWER", "evse_uid": evses[0]["uid"], "value": 0.5}])
    key, _ = issue_api_key(loop.store, role=ApiRole.dso, sites=(), label="browser", now=datetime.now(UTC))
    base = loop.service.url

    browser.get(f"{base}/dashboard#site={SITE}")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    Select(browser.find_element(By.ID, "hours")).select_by_value("1")

    # The fleet lists both simulated sites; the chosen one is drawn.
    eventually(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#fleet tbody tr[data-site]")) == 2,
               timeout=30, what="the fleet table")
    eventually(lambda: (s := dashboard_state(browser)) and s["site"] == SITE and s, timeout=30,
               what="the site's chart")
    shot(browser, "1-first-plan")

    # At "now": the limit the DSO set, and the load the charge points report, within it and curtailed.
    def at_now() -> dict[str, Any] | None:
        s = dashboard_state(browser)
        if s is None or s["now"] not in s["data"][0]:
            return None  # no plan covers now yet
        i = s["data"][0].index(s["now"])
        applied = column(s, "applied + fixed (reported)")[i]
        limit = column(s, "limit")[i]
        planned = column(s, "planned + fixed")[i]
        if applied is None or limit is None or planned is None:
            return None
        # What the charge points really allow now, by the simulator's own state.
        allowed = sum(min(ev["limit_w"], ev["evse_max_w"]) for ev in loop.evs(WORK) if ev["limit_w"] is not None)
        return {"limit": limit, "applied": applied, "planned": planned, "allowed": allowed} \
            if abs(applied - allowed) <= 0.02 * LIMIT_W else None

    now = eventually(at_now, timeout=60, what="the reported load at now to match what the charge points apply")
    assert now["limit"] == LIMIT_W
    assert 0.5 * LIMIT_W < now["planned"] <= LIMIT_W + 1.0  # three EVs of 11 kW would take 33 kW: curtailed
    assert now["applied"] <= LIMIT_W + 1.0
    readout = browser.find_element(By.ID, "now-readout")
    assert float(readout.get_attribute("data-limit-w") or "nan") == LIMIT_W
    assert "limit 20.0 kW" in readout.text

    # The past part of the axis fills as cycles pass: limits, plans and delivered energy behind "now".
    def past() -> bool:
        s = dashboard_state(browser)
        assert s is not None
        behind = [i for i, x in enumerate(s["data"][0]) if x < s["now"]]
        limits = [column(s, "limit")[i] for i in behind]
        delivered = [column(s, "delivered (CPO energy)")[i] for i in behind]
        return sum(v == LIMIT_W for v in limits) >= 3 and any(v is not None and v > 0 for v in delivered)

    eventually(past, timeout=120, what="three past buckets at the limit and delivered energy")

    # The session whose charge point applies less is UNDER_PLAN, highlighted in its row.
    under = eventually(lambda: browser.find_elements(By.CSS_SELECTOR, "#sessions tr.under"), timeout=60,
                       what="an UNDER_PLAN row")
    assert [row.get_attribute("data-session") for row in under] == [sessions[0]]
    assert "UNDER PLAN" in under[0].text
    plain = browser.find_element(By.CSS_SELECTOR, f"#sessions tr[data-session='{sessions[1]}'] td")
    assert under[0].find_element(By.TAG_NAME, "td").value_of_css_property("background-color") != \
        plain.value_of_css_property("background-color")

    # The commands panel lists the SetChargingProfile requests the CPO accepted, one per EV at least.
    sets = eventually(lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "#commands tr[data-kind='set']")
                               if r.get_attribute("data-response") == "ACCEPTED"] or None,
                      timeout=30, what="accepted profiles in the commands panel")
    assert len(sets) >= len(sessions)
    assert "SetChargingProfile" in sets[0].text and "first profile of the session" in \
        browser.find_element(By.ID, "commands").text
    path = shot(browser, "2-after-cycles")
    if os.environ.get("SCSP_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(path, ROOT / "docs" / "dashboard.png")

    # No error box, no console error, and not one request beyond this machine.
    assert not browser.find_element(By.ID, "error").is_displayed()
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    hosts = {urlsplit(m["params"]["request"]["url"]).hostname
             for m in (json.loads(e["message"])["message"] for e in browser.get_log("performance"))
             if m["method"] == "Network.requestWillBeSent" and not m["params"]["request"]["url"].startswith("data:")}
    assert hosts == {"127.0.0.1"}


def test_the_api_docs_render_with_no_request_leaving_the_machine(loop: Loop, browser: WebDriver) -> None:
    browser.get(f"{loop.service.url}/schema")
    eventually(lambda: browser.find_elements(By.CSS_SELECTOR, ".opblock"), timeout=30, what="the operations")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "/api/v1/commands" in text and "/api/v1/fleet" in text
    shot(browser, "schema")
    hosts = {urlsplit(m["params"]["request"]["url"]).hostname
             for m in (json.loads(e["message"])["message"] for e in browser.get_log("performance"))
             if m["method"] == "Network.requestWillBeSent" and not m["params"]["request"]["url"].startswith("data:")}
    assert hosts == {"127.0.0.1"}
    assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
