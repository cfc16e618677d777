"""Debian's Chromium driven by Selenium: headless, offline, and strict about script errors."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless, and nothing reaches for the network on its own (this machine has none to reach).
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


def start_chromium(profile_dir: Path) -> webdriver.Chrome:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        raise RuntimeError(
            "the browser tests need Debian's chromium and chromium-driver: .ci/run installs them"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.download_dir = profile_dir.parent / "downloads"  # what the page saves lands here
    driver.download_dir.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(driver.download_dir)}
    )
    return driver


def script_errors(driver) -> list[str]:
    """Uncaught errors and console.error calls; failed requests (4xx a test provokes) are not."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]
    ]


def wait_until(driver, condition, timeout: float = 120.0, message: str = ""):
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d), message)


def element(driver, css: str, timeout: float = 30.0):
    """The first element matching `css`, once the page's modules have rendered it."""
    return wait_until(driver, lambda d: (d.find_elements(By.CSS_SELECTOR, css) or [None])[0], timeout)


def by_testid(driver, testid: str):
    return driver.find_element(By.CSS_SELECTOR, f"[data-testid='{testid}']")


def text_of(driver, testid: str) -> str:
    return by_testid(driver, testid).text.strip()


def chart_points(driver, testid: str) -> int:
    return int(by_testid(driver, testid).find_element(By.TAG_NAME, "svg").get_attribute("data-points") or 0)


AXE = Path(__file__).resolve().parents[1] / "browser" / "vendor" / "axe-core" / "axe.min.js"
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then((result) => done(result.violations.map((v) => (
  {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}))));
"""


def accessibility_problems(driver) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now (vendored, injected)."""
    driver.set_script_timeout(60)
    driver.execute_script(AXE.read_text())
    found = driver.execute_async_script(RUN_AXE)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def screenshot(driver, name: str) -> None:
    """For the docs: written to $FINETUNE_SCREENSHOTS/<name>.png when it is set."""
    folder = os.environ.get("FINETUNE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def pause(seconds: float) -> None:
    time.sleep(seconds)
