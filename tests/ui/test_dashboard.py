"""The dashboard in a real headless Chromium against a real gateway server whose worker
runs batches on the emulators: pages load, a running batch's progress updates on the page
while the test lets the emulator answer, another key sees nothing of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.gateway.server import running_gateway
from tests.support.emulated import chat_lines, provider_env
from tests.support.processes import wait_for
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.gateway import GatewaySettings, create_app
from unibatch.providers.registry import ProviderSet

MASTER = "master-ui-test-key"
LINES = 10
SENDERS = 2
# Only to fail a broken run: every wait ends as soon as the page shows what it waits for.
PATIENCE = 60


@pytest.fixture
def gateway(emulator: RunningEmulator, fast_settings: Settings, tmp_path: Path) -> Iterator[str]:
    """A gateway server with its worker, on a SQLite file, wired to the emulators; real-time
    jobs send two requests at a time (so what the emulator holds is known)."""
    settings = fast_settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'ui.db'}",
            "realtime_concurrency": SENDERS,
        }
    )
    app = create_app(
        settings,
        gateway_settings=GatewaySettings(
            master_key=SecretStr(MASTER), files_dir=tmp_path / "files"
        ),
        providers=ProviderSet(provider_env(emulator)),
    )
    with running_gateway(app) as url:
        yield url


def api(url: str, method: str, path: str, key: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.request(
        method, url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30, **kwargs
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def log_in(driver: WebDriver, url: str, key: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/ui/login")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, PATIENCE).until(lambda d: d.current_url.rstrip("/").endswith("/ui"))


def field(driver: WebDriver, name: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'#batch [data-field="{name}"]').text)


def test_pages_load_progress_updates_live_and_a_foreign_key_sees_nothing(
    chrome: WebDriver, gateway: str, emulator: RunningEmulator, screenshots: Path
) -> None:
    driver = chrome
    # No budget for the owner: a local model has no price to reserve against one.
    owner = api(gateway, "POST", "/v1/keys", MASTER, json={"name": "owner"})
    other = api(gateway, "POST", "/v1/keys", MASTER, json={"name": "other", "max_budget": 5})
    # The emulator answers four requests, then holds the next one of each sender.
    emulator.config.update({"max_realtime_answers": 4})
    gate = emulator.emulators["local"].realtime
    lines = chat_lines(LINES, "local/llama3.1:8b", prefix="ui")
    requests = [{"custom_id": line["custom_id"], "body": line["body"]} for line in lines]
    batch_id = api(gateway, "POST", "/v1/batches", owner["key"], json={"requests": requests})["id"]
    # Each sender stores its answer before it sends again: with both held, four are stored.
    wait_for(lambda: gate.held == SENDERS, PATIENCE, "both senders held at the emulator")

    log_in(driver, gateway, owner["key"])
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-batch="{batch_id}"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-field="status"]').text == "in_progress"

    driver.get(f"{gateway}/ui/batches/{batch_id}")
    assert (field(driver, "finished"), field(driver, "total")) == ("4", str(LINES))
    assert field(driver, "status") == "in_progress"
    assert field(driver, "eta") != ""
    assert driver.find_element(By.ID, "jobs").text.count("local") >= 1
    driver.save_screenshot(str(screenshots / "batch-running.png"))

    # The page is not reloaded: its script shows the rest as the emulator answers them.
    emulator.config.update({"max_realtime_answers": None})
    WebDriverWait(driver, PATIENCE).until(lambda d: field(d, "status") == "completed")
    assert field(driver, "finished") == str(LINES)
    assert field(driver, "counts.succeeded") == str(LINES)
    assert field(driver, "eta") == ""
    driver.save_screenshot(str(screenshots / "batch-completed.png"))

    # The request list, searched: the request and its result side by side.
    search = driver.find_element(By.ID, "q")
    search.send_keys("ui-00007")
    driver.find_element(By.ID, "search").click()
    WebDriverWait(driver, PATIENCE).until(lambda d: "q=ui-00007" in d.current_url)
    shown = driver.find_elements(By.CSS_SELECTOR, "#requests tr[data-custom-id]")
    assert [r.get_attribute("data-custom-id") for r in shown] == ["ui-00007"]
    assert "Say something about 7." in shown[0].text and "chat.completion" in shown[0].text

    # Another key: no batch listed, the batch's page and progress say nothing of it.
    log_in(driver, gateway, other["key"])
    assert driver.find_element(By.ID, "no-batches").is_displayed()
    assert batch_id not in driver.page_source
    driver.get(f"{gateway}/ui/batches/{batch_id}")
    assert driver.find_element(By.ID, "missing").is_displayed()
    assert "ui-00000" not in driver.page_source
    driver.get(f"{gateway}/ui/api/progress?ids={batch_id}")
    assert driver.find_element(By.TAG_NAME, "body").text.strip() == "{}"
    driver.get(f"{gateway}/ui/keys")
    assert driver.find_element(By.ID, "forbidden").is_displayed()

    # The master key: every page loads, the keys page shows budgets and spend.
    log_in(driver, gateway, MASTER)
    assert driver.find_element(By.CSS_SELECTOR, f'tr[data-batch="{batch_id}"]').is_displayed()
    driver.save_screenshot(str(screenshots / "batches.png"))
    driver.get(f"{gateway}/ui/keys")
    budgeted = driver.find_element(By.CSS_SELECTOR, f'tr[data-key="{other["id"]}"]')
    assert "$5.0000" in budgeted.text
    assert "owner" in driver.find_element(By.ID, "keys").text
    driver.save_screenshot(str(screenshots / "keys.png"))
    driver.get(f"{gateway}/ui/usage")
    assert f"local/llama3.1:8b: {LINES}" in driver.find_element(By.ID, "legend").text
    assert driver.find_elements(By.CSS_SELECTOR, "#usage svg rect")
    driver.save_screenshot(str(screenshots / "usage.png"))
    assert {p.name for p in screenshots.iterdir()} >= {"batch-running.png", "usage.png"}
