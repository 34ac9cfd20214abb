"""The /ui dashboard in a real headless Chromium against a real gateway: it loads, lists a
deployed function, invokes it from its form, and shows a call made from outside within two
seconds. A screenshot is kept under the test's tmp dir (and, with FAAS_DASHBOARD_SCREENSHOT=PATH,
also written there: that is how docs/dashboard.png is made)."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.integration.browser import CHROMIUM_FLAGS, ensure_chromium
from tests.integration.conftest import Gateway

CODE = """
import os
import re
def handler(event, context):
    return {"message": f"{os.environ.get('GREETING', 'Hello')}, {event.get('name', 'world')}!"}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = ensure_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_FLAGS), headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser, gateway: Gateway, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield pg
    finally:
        shot = tmp_path / "dashboard.png"
        pg.screenshot(path=str(shot), full_page=True)
        print(f"dashboard screenshot: {shot}")
        if os.environ.get("FAAS_DASHBOARD_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["FAAS_DASHBOARD_SCREENSHOT"])
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_dashboard_lists_invokes_and_follows_calls(gateway: Gateway, make_function, page: Page) -> None:
    name, folder = make_function(CODE, memory=256, timeout=5, environment={"GREETING": "Hi"})
    gateway.deploy(folder)
    gateway.invoke(name, b'{"name": "warm-up"}')

    page.goto(f"{gateway.url}/ui")
    row = page.locator(f'#functions tr[data-function="{name}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("256 MB")
    expect(row).to_contain_text("5 s")
    expect(row).to_contain_text("python3.11")
    expect(page.locator(f'#environments tr td:text-is("{name}")').first).to_be_visible(timeout=5_000)

    # Invoke from the form: the result, its request id and the REPORT line.
    page.select_option("#invoke-function", name)
    page.fill("#invoke-payload", '{"name": "browser"}')
    page.click("#invoke-button")
    expect(page.locator("#invoke-result")).to_be_visible(timeout=30_000)
    expect(page.locator("#invoke-payload-out")).to_contain_text('"message": "Hi, browser!"')
    expect(page.locator("#invoke-outcome")).to_have_text("200 · ok")
    report = page.locator("#invoke-report")
    expect(report).to_contain_text("REPORT RequestId: ")
    expect(report).to_contain_text("Memory Size: 256 MB")
    form_request_id = page.locator("#invoke-request-id").inner_text()
    assert form_request_id and form_request_id in report.inner_text()
    expect(page.locator(f'#invocations tr[data-request-id="{form_request_id}"]')).to_be_visible(timeout=5_000)

    # A call from outside the browser shows up within two seconds, with its outcome.
    r = requests.post(f"{gateway.url}/2015-03-31/functions/{name}/invocations", data=b'{"name": "curl"}', timeout=30)
    answered = time.monotonic()
    assert r.status_code == 200
    request_id = r.headers["x-amzn-RequestId"]
    outside = page.locator(f'#invocations tr[data-request-id="{request_id}"]')
    expect(outside).to_be_visible(timeout=2_000)
    assert time.monotonic() - answered < 2.0
    expect(outside).to_contain_text(name)
    expect(outside).to_contain_text("ok")
    expect(outside).to_contain_text("warm")

    # Its log opens under it; the latency chart has been drawn for the function.
    outside.click()
    expect(page.locator("#invocations tr.logs pre").first).to_contain_text(f"REPORT RequestId: {request_id}")
    page.select_option("#invoke-function", name)
    expect(page.locator("#chart-title")).to_have_text(name, timeout=5_000)
    expect(page.locator("#chart canvas")).to_have_count(1)


def test_a_failing_call_is_shown_as_failed(gateway: Gateway, make_function, page: Page) -> None:
    name, folder = make_function("def handler(event, context):\n    raise KeyError('nope')\n")
    gateway.deploy(folder)
    page.goto(f"{gateway.url}/ui")
    expect(page.locator(f'#functions tr[data-function="{name}"]')).to_be_visible(timeout=10_000)
    page.select_option("#invoke-function", name)
    page.click("#invoke-button")
    expect(page.locator("#invoke-outcome")).to_have_text("200 · Unhandled", timeout=30_000)
    expect(page.locator("#invoke-payload-out")).to_contain_text('"errorType": "KeyError"')
    request_id = page.locator("#invoke-request-id").inner_text()
    failed = page.locator(f'#invocations tr[data-request-id="{request_id}"]')
    expect(failed).to_contain_text("error (KeyError)", timeout=5_000)
    # The function's row counts the error within the next refresh.
    expect(page.locator(f'#functions tr[data-function="{name}"] td.status-error')).to_have_text("1", timeout=5_000)


def test_the_invoke_forms_sample_picker_fills_in_a_sample_event(gateway: Gateway, page: Page) -> None:
    page.goto(f"{gateway.url}/ui")
    expect(page.locator("#invoke-sample option[value='s3/put']")).to_have_count(1, timeout=30_000)
    page.select_option("#invoke-sample", "s3/put")
    expect(page.locator("#invoke-payload")).to_have_value(re.compile(r'"eventName": "ObjectCreated:Put"'), timeout=10_000)
