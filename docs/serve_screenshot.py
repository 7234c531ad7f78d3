"""Regenerate docs/serve.png: `zoo serve` in headless chromium after stylising a Kodak test photo.

    python docs/serve_screenshot.py [--chromium /usr/bin/chromium]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # serve_helpers: the test suite's loopback server
PHOTO = (ROOT / ".." / "shared" / "assets" / "photos-1k" / "train" / "kodak_kodim23.jpg").resolve()  # freely usable


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--model", default="starry@1")
    ap.add_argument("--out", default=str(ROOT / "docs" / "serve.png"))
    a = ap.parse_args()
    import os

    from playwright.sync_api import sync_playwright
    from PIL import Image

    from serve_helpers import running_server
    from zoo.serve.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STYLE_ZOO_HOME"] = str(Path(tmp) / "zoo")  # the built-in models only
        with running_server(create_app()) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=a.chromium, headless=True)
            page = browser.new_page(viewport={"width": 1200, "height": 860})
            page.goto(url)
            page.wait_for_selector(".model[aria-pressed=true]")
            page.wait_for_function("() => [...document.querySelectorAll('.model img')].every(i => i.complete && i.naturalWidth > 0)")
            page.locator(f".model[data-ref='{a.model}']").click()
            page.set_input_files("#photo", str(PHOTO))
            page.wait_for_function(f"() => document.getElementById('result').dataset.model === '{a.model}'"
                                   " && document.getElementById('result').naturalWidth > 0", timeout=120_000)
            page.wait_for_timeout(300)
            shot = Path(tmp) / "shot.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        img = Image.open(shot).convert("RGB")
        img = img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.Resampling.LANCZOS)
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(a.out, optimize=True)
    print(f"wrote {a.out} ({Path(a.out).stat().st_size / 1e3:.0f} KB)")


if __name__ == "__main__":
    main()
