"""The demo page in headless Chromium against the live mesh: upload a photo, see the ID photo, delete the data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from matplotlib import cbook
from playwright.sync_api import expect, sync_playwright

from tests.support.mesh import Mesh

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path_factory.mktemp("browser"), database_url=database_url, free_ports=True, quiet=True)
    try:
        mesh.up()
        yield mesh
    finally:
        mesh.down()


def test_demo_page_makes_an_id_photo_and_deletes_the_data(live: Mesh, tmp_path: Path) -> None:
    photo = tmp_path / "grace_hopper.jpg"
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        photo.write_bytes(fh.read())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
            page.goto(live.http_url + "/")
            page.check("#age-ok", force=True)
            page.set_input_files("#photo-input", str(photo))
            page.select_option("#country", "US")
            expect(page.locator("#spec option[value='us-passport']")).to_have_count(1, timeout=30_000)
            page.select_option("#spec", "us-passport")
            expect(page.locator("#make")).to_be_enabled(timeout=60_000)
            page.click("#make")
            result = page.locator("#result-photo")
            expect(result).to_be_visible(timeout=120_000)
            page.wait_for_function("() => document.querySelector('#result-photo').naturalWidth > 0", timeout=60_000)
            width = page.evaluate("() => document.querySelector('#result-photo').naturalWidth")
            height = page.evaluate("() => document.querySelector('#result-photo').naturalHeight")
            assert (width, height) == (600, 600)  # 2x2 in at 300 dpi
            expect(page.locator("#report")).not_to_be_empty()
            page.screenshot(path=str(Path("/tmp") / "likeness-demo.png"), full_page=True)
            page.click("#delete-data")
            page.click("#delete-confirm")
            expect(page.locator("#erasure-status")).to_contain_text("completed", timeout=60_000)
        finally:
            browser.close()
