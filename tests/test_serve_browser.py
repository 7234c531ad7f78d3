"""End to end in a real headless browser: Debian's chromium, driven by Playwright, uploads a photo to the
`zoo serve` page and sees the stylised image appear (then picks another model and sees it change)."""
from __future__ import annotations

import base64
import os
import shutil

import pytest

from conftest import PHOTOS
from serve_helpers import running_server

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")


def chromium_path() -> str | None:
    """Debian's chromium (``playwright install`` cannot download browsers here); $CHROMIUM overrides."""
    for cand in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if cand and (path := shutil.which(cand)):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium found on PATH (apt-get install -y chromium, or set $CHROMIUM); .ci/run installs it")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def test_upload_a_photo_and_see_it_stylised(browser, tmp_path, monkeypatch):
    from PIL import Image

    from zoo.serve.app import create_app

    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "user-zoo"))
    photo = tmp_path / "chicago.jpg"
    Image.open(PHOTOS / "chicago.jpg").convert("RGB").resize((240, 160)).save(photo, quality=92)
    with running_server(create_app()) as url:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url, timeout=30_000)
        page.wait_for_selector(".model[aria-pressed=true]", timeout=30_000)
        assert page.locator(".model").count() == 6  # the six built-in models
        page.wait_for_function("() => [...document.querySelectorAll('.model img')].every(i => i.complete && i.naturalWidth > 0)",
                               timeout=30_000)  # every model shows its sample picture
        first = page.locator(".model[aria-pressed=true]").get_attribute("data-ref")

        page.set_input_files("#photo", str(photo))  # the same path a drop or the file picker takes
        page.wait_for_function("() => { const i = document.getElementById('result');"
                               " return (!i.hidden && i.complete && i.naturalWidth > 0) || document.querySelector('#status.error'); }",
                               timeout=60_000)
        assert page.locator("#status.error").count() == 0, page.locator("#status").inner_text()
        assert page.locator("#preview").is_visible()
        size = page.evaluate("() => [document.getElementById('result').naturalWidth, document.getElementById('result').naturalHeight]")
        assert size == [240, 160]  # 240 px is under the default size: not upscaled
        assert page.locator("#result").get_attribute("data-model") == first
        download = page.locator("#download")
        assert download.is_visible() and download.get_attribute("href").startswith("blob:")
        assert download.get_attribute("download").startswith("chicago_")
        assert "ms" in page.locator("#status").inner_text() and page.locator("#status.error").count() == 0

        # The result differs from the photo: compare the two images' pixels in the page.
        diff = page.evaluate("""() => {
            const px = (img) => { const c = document.createElement('canvas'); c.width = 60; c.height = 40;
                const g = c.getContext('2d'); g.drawImage(img, 0, 0, 60, 40); return g.getImageData(0, 0, 60, 40).data; };
            const a = px(document.getElementById('preview')), b = px(document.getElementById('result'));
            let s = 0; for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]); return s / a.length / 255; }""")
        assert diff > 0.05

        # Another model: the result is replaced by that model's.
        page.locator(".model[data-ref='wave@5']").click()
        page.wait_for_function("() => document.getElementById('result').dataset.model === 'wave@5'", timeout=60_000)

        # Drag and drop another photo onto the drop zone: it is stylised in turn.
        Image.open(PHOTOS / "golden_gate.jpg").convert("RGB").resize((120, 90)).save(tmp_path / "gate.jpg", quality=92)
        page.evaluate("""async (b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)), dt = new DataTransfer();
            dt.items.add(new File([bytes], 'gate.jpg', { type: 'image/jpeg' }));
            document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
        }""", base64.b64encode((tmp_path / "gate.jpg").read_bytes()).decode())
        page.wait_for_function("() => document.getElementById('download').download.startsWith('gate_')"
                               " && document.getElementById('result').naturalWidth === 120", timeout=60_000)
        assert not errors, errors
        assert all(r.startswith(url) or r.startswith("blob:") or r.startswith("data:") for r in requests), requests  # nothing external
        page.close()
