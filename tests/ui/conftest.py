"""A headless Chromium (Debian's `chromium` and `chromium-driver`) driven by selenium,
one session per test module.

Without the browser the tests skip, saying so; with UNIBATCH_TEST_BROWSER=required (CI
sets it) a missing browser fails the run instead. Selenium Manager never downloads a
browser or a driver here: both paths are given, and it runs offline.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("UNIBATCH_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("UNIBATCH_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} not found: apt-get install {package}"
    return None


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's screenshots go."""
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def chrome() -> Iterator[object]:
    """A headless Chromium session shared by the tests of a module."""
    missing = _missing()
    if missing:
        if os.environ.get("UNIBATCH_TEST_BROWSER") == "required":
            pytest.fail(f"UNIBATCH_TEST_BROWSER=required but {missing}")
        pytest.skip(f"browser tests need Chromium: {missing}")
    # Never fetch a browser or driver from the internet, whatever the paths say.
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # runs as root in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
