"""Pacer's web app in a real headless Chromium (Debian's `chromium`, driven by
Playwright for Python with the system executable), against a `pacer serve --http`
filled by the demo. Run by tests/webhooks.rs; prints what it checked, exits non-zero
on the first thing that does not hold. Screenshots of each page go to --out.

    python3 tests/web/browser.py --url http://127.0.0.1:PORT --admin-token T \
        --native-token N --manager "Maria Keller" --password P --team north --out DIR
"""

import argparse
import json
import shutil
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import sync_playwright


def api(base, path, token):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def post_events(base, token, lines):
    body = "\n".join(json.dumps(l) for l in lines).encode()
    req = urllib.request.Request(
        base + "/v1/events",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        print(f"FAILED: POST /v1/events: {e.code} {e.read().decode()}", flush=True)
        sys.exit(1)


def number(text):
    """A figure as the page shows it (1,234.50, –) as a Decimal, or None."""
    t = text.strip().replace(",", "")
    return None if t in ("", "–") else Decimal(t)


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def main():
    a = argparse.ArgumentParser()
    for k in ("url", "admin-token", "native-token", "manager", "password", "team", "out",
              "finance-user", "finance-password"):
        a.add_argument(f"--{k}", required=True)
    args = a.parse_args()
    base, out = args.url.rstrip("/"), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    check(chromium is not None, "Debian's chromium is installed")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        # Log in as the team's manager: the home page is the team page.
        page.goto(base + "/")
        check("/login" in page.url, "an anonymous visitor is sent to the log-in page")
        page.screenshot(path=str(out / "login.png"), full_page=True)
        page.fill("input[name=user]", args.manager)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/team/{args.team}**")
        check(page.url.endswith(f"/team/{args.team}"), f"the manager lands on team {args.team}")
        page.screenshot(path=str(out / "team.png"), full_page=True)

        # The team page's figures are the JSON API's.
        rows = api(base, f"/v1/report?team={args.team}&bucket=total", args.admin_token)
        shown = {}
        for tr in page.query_selector_all("#team-table tbody tr"):
            rep = tr.get_attribute("data-rep")
            cells = {td.get_attribute("data-field"): td.inner_text() for td in tr.query_selector_all("td[data-field]")}
            shown[rep] = cells
        check(len(shown) == len(rows) and len(rows) > 0, f"the table lists the team's {len(rows)} reps")
        for r in rows:
            cells = shown[r["rep"]]
            for field in ("plan", "actual", "expected_to_date", "pace_gap", "forecast"):
                want = None if r[field] is None else Decimal(r[field])
                got = number(cells[field])
                if want != got:
                    check(False, f"{r['rep']} {field}: page {cells[field]!r}, API {r[field]!r}")
        check(True, "every rep's plan, actual, expected, pace gap and forecast equal the API's")
        check(page.query_selector("figure svg") is not None, "the team chart is drawn (SVG)")

        # The month so far: the cumulative actual on the last day shown is the reps'
        # actual, and the plan to date on today is the sum of their expected.
        course = page.query_selector_all("#course-table tbody tr")
        check(len(course) >= 20, f"the month's course lists {len(course)} working days")
        shown_days = [
            {td.get_attribute("data-field"): number(td.text_content()) for td in tr.query_selector_all("td")}
            for tr in course
        ]
        upto = [d for d in shown_days if d["actual"] is not None]
        check(len(upto) > 0, f"the course has {len(upto)} days up to today")
        total_actual = sum(Decimal(r["actual"]) for r in rows)
        check(upto[-1]["actual"] == total_actual, f"today's cumulative actual {upto[-1]['actual']} is the reps' {total_actual}")
        total_expected = sum(Decimal(r["expected_to_date"]) for r in rows if r["expected_to_date"] is not None)
        check(upto[-1]["plan_to_date"] == total_expected, f"today's plan to date {upto[-1]['plan_to_date']} is the reps' expected {total_expected}")
        total_forecast = sum(Decimal(r["forecast"]) for r in rows if r["forecast"] is not None)
        check(shown_days[-1]["forecast"] == total_forecast, f"the forecast line ends at the reps' forecast {total_forecast}")
        check(len(page.query_selector_all("figure svg")) == 2, "and its chart is drawn beside the bars")

        # Months are chosen in the page, and the address says which: shareable.
        page.fill("form.choose input[name=month]", "2026-10")
        page.click("form.choose button[type=submit]")
        page.wait_for_url(f"**/team/{args.team}?month=2026-10")
        check("2026-10" in page.inner_text("h1"), "choosing October shows October, at a shareable address")

        # Another team is out of reach.
        other = "south" if args.team != "south" else "north"
        resp = page.goto(base + f"/team/{other}")
        check(resp.status == 403 and "Not in your scope" in page.content(), f"team {other} is not reachable")

        # A rep, then a bucket's actual: the events listed sum to the figure.
        page.goto(base + f"/team/{args.team}")
        first = rows[0]["rep"]
        page.click(f"#team-table tr[data-rep='{first}'] th a")
        page.wait_for_url(f"**/rep/{first}**")
        page.screenshot(path=str(out / "rep.png"), full_page=True)
        actual_text = page.inner_text("#bucket-table tr[data-bucket='total'] td[data-field=actual]")
        page.click("#bucket-table tr[data-bucket='total'] td[data-field=actual] a")
        page.wait_for_url("**/events**")
        events_url = page.url
        page.screenshot(path=str(out / "events.png"), full_page=True)
        deltas = [int(td.get_attribute("data-delta")) for td in page.query_selector_all("#events-table td[data-delta]")]
        total = int(page.get_attribute("#events-total", "data-total"))
        check(sum(deltas) == total, f"the {len(deltas)} events listed sum to the total shown ({total})")
        check(Decimal(total) / 100 == number(actual_text), f"and the total is the figure clicked ({actual_text})")
        # Down to one event: every field as the log holds it.
        first_seq = page.inner_text("#events-table tbody tr td a")
        page.click("#events-table tbody tr td a")
        page.wait_for_url(f"**/events/{first_seq}")
        event_url = page.url
        page.screenshot(path=str(out / "event.png"), full_page=True)
        fields = dict(zip(
            [dt.inner_text() for dt in page.query_selector_all("#event-fields dt")],
            [dd.inner_text() for dd in page.query_selector_all("#event-fields dd")],
        ))
        check(fields.get("seq") == first_seq and fields.get("rep") == first, f"event {first_seq} shows its fields ({fields.get('type')})")
        resp = page.goto(base + "/events/999999999")
        check(resp.status == 404, "an event the log does not have is a 404")

        # The inbox: acknowledge a focus alert with a note; it leaves the open list.
        page.goto(base + "/alerts")
        page.screenshot(path=str(out / "alerts.png"), full_page=True)
        items = page.query_selector_all("li[data-alert]")
        check(len(items) > 0, f"the inbox lists {len(items)} open alerts")
        target = items[0].get_attribute("data-alert")
        page.fill(f"li[data-alert='{target}'] input[name=note]", "pipeline review on Tuesday")
        page.click(f"li[data-alert='{target}'] button[type=submit]")
        page.wait_for_url("**/alerts")
        check(page.query_selector(f"li[data-alert='{target}']") is None, "the acknowledged alert left the open list")
        acked = [x for x in api(base, "/v1/alerts?status=all&team=" + args.team, args.admin_token) if x["alert_id"] == target]
        check(acked and acked[0]["acknowledged_by"] == args.manager, "the acknowledgement is by the logged-in manager")

        # A webhook event changes an alert: the open page updates without a reload.
        open_alerts = api(base, f"/v1/alerts?team={args.team}", args.admin_token)
        act = next((x for x in open_alerts if x["bucket"].startswith("activity:")), None)
        before = page.evaluate("window.performance.getEntriesByType('navigation').length")
        page.evaluate("window.__marker = 'still the same page'")
        if act is not None:
            kind = act["bucket"].split(":", 1)[1]
            lines = [
                {"event_id": f"web-{i}", "source": "crm", "occurred_at": "2026-11-18T14:00:00Z",
                 "type": "activity_logged", "rep": act["rep"], "kind": kind}
                for i in range(200)
            ]
            watched = act["alert_id"]
        else:
            x = open_alerts[0]
            lines = [{"event_id": "web-win", "source": "crm", "occurred_at": "2026-11-18T14:00:00Z",
                      "type": "deal_won", "rep": x["rep"], "deal": "web-deal", "account": "web-account",
                      "customer_kind": "new", "amount": "5000000.00", "currency": x["currency"],
                      "closed_on": "2026-11-18"}]
            watched = x["alert_id"]
        check(page.query_selector(f"li[data-alert='{watched}']") is not None, f"alert {watched} is on the page")
        post_events(base, args.native_token, lines)
        deadline = time.time() + 20
        while time.time() < deadline and page.query_selector(f"li[data-alert='{watched}']") is not None:
            time.sleep(0.2)
        check(page.query_selector(f"li[data-alert='{watched}']") is None, "the page dropped the resolved alert by itself")
        check(page.evaluate("window.__marker") == "still the same page", "without a reload")
        check(before == page.evaluate("window.performance.getEntriesByType('navigation').length"), "no navigation happened")

        # The weekly digest, printable.
        page.goto(base + f"/digest/{args.team}")
        check("Weekly digest" in page.inner_text("h1"), "the digest page opens")
        page.screenshot(path=str(out / "digest.png"), full_page=True)
        page.emulate_media(media="print")
        page.screenshot(path=str(out / "digest-print.png"), full_page=True)
        check(not page.is_visible("header"), "the printed digest has no navigation")

        # On a phone's width every page still reads: nothing wider than the screen
        # (wide tables scroll inside their own box).
        def on_phone(context_page, pages):
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.context.add_cookies(context_page.context.cookies())
            for name, url, full in pages:
                phone.goto(url)
                phone.screenshot(path=str(out / f"{name}-phone.png"), full_page=full)
                width = phone.evaluate("document.documentElement.scrollWidth")
                check(width <= 400, f"the {name} page fits a phone's width ({width}px)")
            phone.close()

        on_phone(page, [
            ("team", base + f"/team/{args.team}", True),
            ("rep", base + f"/rep/{first}", True),
            ("events", events_url, True),
            ("event", event_url, True),
            ("alerts", base + "/alerts", True),
            ("digest", base + f"/digest/{args.team}", True),
            ("login", base + "/login", True),
        ])

        # Finance: the plan versions, a diff of two, and its XLSX download that opens
        # with openpyxl and holds what the screen shows.
        fin = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
        fin.goto(base + "/login")
        fin.fill("input[name=user]", args.finance_user)
        fin.fill("input[name=password]", args.finance_password)
        fin.click("button[type=submit]")
        fin.wait_for_url("**/finance")
        check(fin.query_selector("#history-table tbody tr") is not None, "finance sees the plan versions")
        fin.screenshot(path=str(out / "finance.png"), full_page=True)
        before_rows = len(fin.query_selector_all("#history-table tbody tr"))
        demo_day = fin.inner_text("#history-table tbody tr td:nth-child(10)")[:10]

        # A plan published now (after the demo's day): "as recorded at" the end of the
        # demo's day replays the log without it.
        post_events(base, args.native_token, [{
            "event_id": "web-plan-check", "source": "finance", "occurred_at": "2026-11-18T16:00:00Z",
            "type": "plan_published", "plan": "zz-web-check", "version": 1, "basis": "top_down",
            "horizon_start": "2027-06", "effective_from": "2027-06", "currency": "USD",
            "lines": [{"rep": "zz-nobody", "month": "2027-06", "bucket": "total", "target": "1000"}]}])
        deadline = time.time() + 20
        while time.time() < deadline:
            fin.goto(base + "/finance")
            if "zz-web-check" in fin.inner_text("#history-table"):
                break
            time.sleep(0.2)
        now_rows = len(fin.query_selector_all("#history-table tbody tr"))
        check(now_rows == before_rows + 1, f"the new version is listed ({now_rows} rows)")
        fin.fill("form.asof input[name=as_of]", f"{demo_day}T23:59")
        fin.click("form.asof button[type=submit]")
        fin.wait_for_url("**/finance?as_of=**")
        then = fin.inner_text("#history-table")
        then_rows = len(fin.query_selector_all("#history-table tbody tr"))
        check(fin.query_selector("#as-of") is not None and "zz-web-check" not in then and then_rows == before_rows,
              f"as recorded at {demo_day}T23:59, the {then_rows} versions known then are shown, not the later one")
        fin.screenshot(path=str(out / "finance-as-of.png"), full_page=True)
        fin.goto(base + "/finance")

        # A version's lines: the total bucket of a month sums to the plan the API reports.
        fin.click("ul.versions a")
        fin.wait_for_url("**/finance/lines**")
        fin.goto(fin.url + "&month=2026-11&bucket=total")
        fin.screenshot(path=str(out / "lines.png"), full_page=True)
        check(fin.query_selector("#lines-table tbody tr") is not None, "a version's lines are listed, filtered to a month and bucket")

        # The roll-up by team and region: the org line is the sum of the API's rows.
        fin.goto(base + "/finance/rollup?month=2026-11")
        fin.screenshot(path=str(out / "rollup.png"), full_page=True)
        roll = {}
        for tr in fin.query_selector_all("#rollup-table tbody tr"):
            tds = tr.query_selector_all("td")
            roll[(tds[0].inner_text(), tds[1].inner_text())] = [td.get_attribute("data-value") for td in tds]
        everyone = api(base, "/v1/report?month=2026-11&bucket=total", args.admin_token)
        org = roll[("org", "")]
        check(Decimal(org[3]) == sum(Decimal(r["plan"]) for r in everyone)
              and Decimal(org[4]) == sum(Decimal(r["actual"]) for r in everyone),
              f"the org's plan {org[3]} and actual {org[4]} are the sums of the API's {len(everyone)} rows")
        teams = [k for k in roll if k[0] == "team"]
        check(sum(Decimal(roll[k][4]) for k in teams) == Decimal(org[4]), f"the {len(teams)} teams add up to the org")
        regions = [k for k in roll if k[0] == "region"]
        check(len(regions) > 0 and sum(Decimal(roll[k][4]) for k in regions) == Decimal(org[4]), f"so do the {len(regions)} regions")

        # The gap: top-down vs commits vs forecast, a TEAM line per team and the ORG.
        fin.goto(base + "/finance/gap?month=2026-11")
        fin.screenshot(path=str(out / "gap.png"), full_page=True)
        gap_rows = [[td.inner_text() for td in tr.query_selector_all("td")] for tr in fin.query_selector_all("#gap-table tbody tr")]
        check(any(r[0] == "ORG" for r in gap_rows) and any(r[0] == "TEAM" for r in gap_rows), "the gap has team and org lines")

        fin.goto(base + "/finance")
        fin.click("ul.diffs a")
        fin.wait_for_url("**/finance/diff**")
        fin.screenshot(path=str(out / "diff.png"))  # the top: the page is long
        cells_js = """() => Array.from(document.querySelectorAll('#diff-table tbody tr')).map(tr =>
            Array.from(tr.querySelectorAll('td')).map(td =>
                td.hasAttribute('data-value') ? {v: td.getAttribute('data-value')} : td.innerText.trim()))"""
        screen = [
            [Decimal(c["v"]) if isinstance(c, dict) else c for c in row]
            for row in fin.evaluate(cells_js)
        ]
        check(len(screen) > 0, f"the diff lists {len(screen)} rows")
        with fin.expect_download() as dl:
            fin.click("text=XLSX")
        path = out / "diff.xlsx"
        dl.value.save_as(str(path))
        import openpyxl
        sheet = openpyxl.load_workbook(path).active
        cells = [list(r) for r in sheet.iter_rows(min_row=2, values_only=True)]
        header = [c.value for c in sheet[1]]
        check(header[:3] == ["rep", "month", "bucket"], f"the workbook's header is {header}")

        def same_rows(file_rows, screen_rows):
            return len(file_rows) == len(screen_rows) and all(
                all(
                    (Decimal(str(x)) == y) if isinstance(y, Decimal) else (str(x) == y)
                    for x, y in zip(a, b)
                )
                for a, b in zip(file_rows, screen_rows)
            )

        pager = fin.query_selector("#diff-table-pages")
        total_rows = int(pager.get_attribute("data-rows")) if pager else len(screen)
        check(len(cells) == total_rows, f"the XLSX holds all {total_rows} rows of the diff")
        check(same_rows(cells[:len(screen)], screen), f"and its first {len(screen)} are the rows on screen")
        if pager:
            fin.click("#diff-table-pages a[rel=next]")
            fin.wait_for_url("**page=2**")
            start = int(fin.get_attribute("#diff-table-pages", "data-from"))
            second = [
                [Decimal(c["v"]) if isinstance(c, dict) else c for c in row]
                for row in fin.evaluate(cells_js)
            ]
            check(same_rows(cells[start:start + len(second)], second), f"page 2 shows rows {start + 1}–{start + len(second)} of the file")
        # Narrowed to one rep: the screen and the file hold that rep's rows only.
        rep0 = screen[0][0]
        fin.goto(fin.url.split("?")[0] + "?" + fin.url.split("?")[1].split("&page")[0] + f"&rep={rep0}")
        one = fin.evaluate(cells_js)
        check(len(one) > 0 and all(r[0] == rep0 for r in one), f"filtered to {rep0}, the diff lists {len(one)} rows, all theirs")
        on_phone(fin, [
            ("finance", base + "/finance", True),
            ("diff", fin.url, False),
            ("rollup", base + "/finance/rollup?month=2026-11", True),
            ("lines", base + "/finance/lines?month=2026-11&bucket=total", False),
            ("gap", base + "/finance/gap?month=2026-11", False),
        ])
        resp = page.goto(base + "/finance")
        check(resp.status == 403, "the manager cannot open finance's pages")
        browser.close()
    print("all checks held", flush=True)


if __name__ == "__main__":
    main()
