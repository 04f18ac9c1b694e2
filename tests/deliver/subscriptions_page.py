"""The web app's /subscriptions page in a real headless Chromium (Debian's `chromium`
driven by Playwright for Python): a manager logs in, sees her subscriptions, adds a
Slack one by the form, is refused a team outside her scope, removes the one she
added; screenshots at a laptop's and a phone's width. Run by tests/deliveries.rs;
prints what it checked and exits non-zero on the first thing that does not hold.

    python3 tests/deliver/subscriptions_page.py --url http://127.0.0.1:PORT \
        --user maria --password P --slack URL --count 5 --out DIR
"""

import argparse
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def main():
    a = argparse.ArgumentParser()
    for k in ("url", "user", "password", "slack", "count", "out"):
        a.add_argument(f"--{k}", required=True)
    args = a.parse_args()
    base, out = args.url.rstrip("/"), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/subscriptions")
        check("/login" in page.url, "an anonymous visitor is sent to log in")
        page.fill("input[name=user]", args.user)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto(base + "/subscriptions")
        check(page.is_visible("nav a[href='/subscriptions']"), "the navigation leads to the subscriptions")
        rows = page.query_selector_all("table.figures tbody tr")
        check(len(rows) == int(args.count), f"the page lists her {args.count} subscriptions ({len(rows)})")
        check("sent" in page.inner_text("table.figures"), "it says the last messages were sent")
        page.screenshot(path=str(out / "subscriptions-laptop.png"), full_page=True)

        # Add a Slack subscription by the form: critical, focus only, quiet hours.
        page.select_option("select[name=kind]", "slack")
        page.fill("input[name=address]", args.slack)
        page.select_option("select[name=severity_min]", "critical")
        page.fill("input[name=quiet]", "19:00-07:30")
        page.check("input[name=focus_only]")
        page.click("form.choose button[type=submit]")
        page.wait_for_load_state()
        check("Added sub-" in page.inner_text("main"), "the form says it added the subscription")
        rows = page.query_selector_all("table.figures tbody tr")
        check(len(rows) == int(args.count) + 1, "and lists it")
        text = page.inner_text("table.figures")
        check("quiet 19:00-07:30" in text and "critical and above" in text and "focus only" in text,
              "with its quiet hours, severity and focus")

        # A team outside her scope is refused, and says why.
        page.select_option("select[name=kind]", "email")
        page.fill("input[name=address]", "maria@example.com")
        page.fill("input[name=teams]", "south")
        page.click("form.choose button[type=submit]")
        page.wait_for_load_state()
        check("not in maria's scope" in page.inner_text("p.error"), "a team outside her scope is refused")
        check(len(page.query_selector_all("table.figures tbody tr")) == int(args.count) + 1, "nothing was added")

        # Remove the one she added (the last row with focus only and quiet hours).
        row = [r for r in page.query_selector_all("table.figures tbody tr") if "19:00-07:30" in r.inner_text()][0]
        row.query_selector("button:has-text('Remove')").click()
        page.wait_for_load_state()
        check("removed" in page.inner_text("p.note"), "it says the subscription was removed")
        check(len(page.query_selector_all("table.figures tbody tr")) == int(args.count), "and lists it no more")

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.context.add_cookies(page.context.cookies())
        phone.goto(base + "/subscriptions")
        phone.screenshot(path=str(out / "subscriptions-phone.png"), full_page=True)
        width = phone.evaluate("document.documentElement.scrollWidth")
        check(width <= 400, f"the page fits a phone's width ({width}px)")
        browser.close()


if __name__ == "__main__":
    main()
