"""Renders an email's HTML part in headless Chromium (Debian's `chromium`, driven by
Playwright for Python with the system executable) at a laptop's and a phone's width,
and saves a screenshot of each. Run by tests/deliveries.rs.

    python3 tests/deliver/screenshot.py EMAIL.html OUT_PREFIX
        # writes OUT_PREFIX-laptop.png and OUT_PREFIX-phone.png, prints what it checked
"""

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main():
    html = Path(sys.argv[1]).read_text()
    out = sys.argv[2]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        for name, width in (("laptop", 900), ("phone", 390)):
            page = browser.new_page(viewport={"width": width, "height": 1000})
            page.set_content(html)
            # A mail client shows the message as it is: nothing may run off the side.
            overflow = page.evaluate(
                """() => {
                    const card = document.querySelector('body > div');
                    return Math.max(document.documentElement.scrollWidth - window.innerWidth,
                                    card ? card.scrollWidth - card.clientWidth : 0);
                }"""
            )
            if overflow > 0:
                print(f"FAILED: at {width} px the email runs {overflow} px off its card or the window")
                sys.exit(1)
            page.screenshot(path=f"{out}-{name}.png", full_page=True)
            print(f"screenshot {out}-{name}.png at {width} px", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
