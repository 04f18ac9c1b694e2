//! Finance's plan commands end to end: a plan file published and read back by the
//! report, every problem of a bad file with its row and column (and nothing
//! published), history, diff and the commit gap. Figures are worked out by hand.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

const REPS: &str = r#"{"event_id":"r-ana","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"ana","name":"Ana Silva","team":"north","manager":"maria"}
{"event_id":"r-ben","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"ben","name":"Ben Okoro","team":"south","manager":"luis"}
{"event_id":"c-ana","source":"crm","occurred_at":"2026-11-02T08:00:00Z","type":"forecast_submitted","rep":"ana","month":"2026-11","amount":"900","currency":"EUR","category":"commit"}
{"event_id":"w-ana","source":"crm","occurred_at":"2026-11-03T08:00:00Z","type":"deal_won","rep":"ana","deal":"d1","account":"a","customer_kind":"new","amount":"300","currency":"EUR","closed_on":"2026-11-03"}
{"event_id":"o-ben","source":"crm","occurred_at":"2026-11-03T08:00:00Z","type":"deal_opened","rep":"ben","deal":"d2","account":"b","customer_kind":"new","amount":"1000","currency":"EUR","expected_close":"2026-11-20","probability":40}
{"event_id":"t","source":"pacer","occurred_at":"2026-11-18T09:00:00Z","type":"clock_tick"}
"#;

const V1: &str = "rep,month,bucket,target
ana,2026-11,total,1000.00
ana,2026-11,new_customer,600.00
ana,2026-11,retention,400.00
ana,2026-11,activity:call,40
ben,2026-11,total,2000.00
ana,2026-12,total,1100.00
ben,2026-12,total,2100.00
";

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, data) = temp_org(EUR);
    std::fs::write(tmp.path().join("reps.jsonl"), REPS).unwrap();
    std::fs::write(tmp.path().join("v1.csv"), V1).unwrap();
    ok(run(&data, &["ingest", "reps.jsonl"]));
    (tmp, data)
}

/// `pacer plan publish FILE` as `version` of plan fy27 (horizon from 2026-11).
fn publish_args<'a>(
    file: &'a str,
    version: &'a str,
    from: &'a str,
    basis: &'a str,
) -> Vec<&'a str> {
    vec![
        "plan",
        "publish",
        file,
        "--plan",
        "fy27",
        "--version",
        version,
        "--effective-from",
        from,
        "--horizon-start",
        "2026-11",
        "--basis",
        basis,
    ]
}

fn publish(
    data: &Path,
    file: &str,
    version: &str,
    from: &str,
    basis: &str,
) -> std::process::Output {
    run(data, &publish_args(file, version, from, basis))
}

#[test]
fn a_published_plan_file_is_what_the_report_and_show_give_back() {
    let (_tmp, data) = setup();
    let out = ok(publish(&data, "v1.csv", "1", "2026-11", "top_down"));
    assert_eq!(
        out.trim(),
        "published plan fy27 version 1 (top_down) effective from 2026-11: 7 lines"
    );
    let rows = json_of(&data, &["report", "--rep", "ana", "--format", "json"]);
    let plan_of = |bucket: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["bucket"] == bucket)
            .unwrap()["plan"]
            .clone()
    };
    assert_eq!(plan_of("total"), json!("1000.00"));
    assert_eq!(plan_of("new_customer"), json!("600.00"));
    assert_eq!(plan_of("activity:call"), json!("40"));
    // `plan show` prints the same lines, sorted: it can be edited and published again.
    let shown = ok(run(&data, &["plan", "show"]));
    // With the unit of each target: the currency, or count for activities.
    let mut want: Vec<String> = V1
        .lines()
        .skip(1)
        .map(|l| {
            let unit = if l.contains(",activity:") {
                "count"
            } else {
                "EUR"
            };
            format!("{l},{unit}")
        })
        .collect();
    want.sort();
    let got: Vec<&str> = shown.lines().skip(1).collect();
    assert_eq!(got, want);
    // The same file and version again is one plan, not two.
    let out = ok(publish(&data, "v1.csv", "1", "2026-11", "top_down"));
    assert!(out.contains("already published"), "{out}");
    // Changed figures under the same version are an error that says so, and the
    // plan in force is still the first.
    let dir = data.parent().unwrap();
    let changed = V1.replace("ben,2026-12,total,2100.00", "ben,2026-12,total,2200.00");
    assert_ne!(changed, V1);
    std::fs::write(dir.join("v1-changed.csv"), changed).unwrap();
    let o = refused(
        &data,
        &publish_args("v1-changed.csv", "1", "2026-11", "top_down"),
    );
    let err = stderr(&o);
    assert!(
        err.contains("plan fy27 version 1 effective from 2026-11 is already published")
            && err.contains("with different content: 1 line differs")
            && err.contains("as version 2 (--basis revision)"),
        "{err}"
    );
}

#[test]
fn a_bad_plan_file_names_every_row_and_column_and_publishes_nothing() {
    let (tmp, data) = setup();
    let bad = "rep,month,bucket,target
zed,2026-11,total,10
ana,2026-11,total,1000.001
ana,2026-11,new_customer,600
ana,2026-11,retention,300
ana,2028-11,total,5
";
    std::fs::write(tmp.path().join("bad.csv"), bad).unwrap();
    let o = refused(&data, &publish_args("bad.csv", "1", "2026-11", "top_down"));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "bad.csv: row 2, column rep: \"zed\" is not a registered rep (rep_registered first)",
            "bad.csv: row 3, column target: \"1000.001\" is not an exact amount in EUR (at most 2 decimals, no separators)",
            "bad.csv: row 6, column month: 2028-11 is outside the plan's 24-month horizon 2026-11..2028-10",
            "bad.csv: row 4, column bucket: ana, 2026-11: new_customer + retention are planned (rows 4, 5) but there is no total line",
            "error: 4 problems in bad.csv: nothing was published",
        ]
    );
}

#[test]
fn history_diff_and_gap() {
    let (tmp, data) = setup();
    ok(publish(&data, "v1.csv", "1", "2026-11", "top_down"));
    // A revision from December: ana up 100, ben down 50.
    let v2 = "rep,month,bucket,target\nana,2026-12,total,1200.00\nben,2026-12,total,2050.00\n";
    std::fs::write(tmp.path().join("v2.csv"), v2).unwrap();
    ok(publish(&data, "v2.csv", "2", "2026-12", "revision"));
    let history = json_of(&data, &["plan", "history", "--format", "json"]);
    let versions: Vec<(&str, &str, &str, &str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap(),
                v["basis"].as_str().unwrap(),
                v["effective_from"].as_str().unwrap(),
                v["total"].as_str().unwrap(),
                v["in_force"].as_str().unwrap(),
            )
        })
        .collect();
    // Version 1 filed November and December (6 200.00); from December version 2
    // governs, so 3 000.00 of version 1 is in force.
    assert_eq!(
        versions,
        [
            ("1", "top_down", "2026-11", "6200.00", "3000.00"),
            ("2", "revision", "2026-12", "3250.00", "3250.00")
        ]
    );
    assert_eq!(history[0]["author"], "pacer-plan");

    // Only December is in both versions; November is not compared.
    let o = run(&data, &["plan", "diff", "1", "2", "--format", "csv"]);
    assert!(
        stderr(&o).contains("only version 1 plans 2026-11: not compared"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        ok(o),
        "rep,month,bucket,from,to,change\n\
         ana,2026-12,total,1100.00,1200.00,100.00\n\
         ben,2026-12,total,2100.00,2050.00,-50.00\n\
         TOTAL,2026-12,total,3200.00,3250.00,50.00\n\
         TOTAL,all,total,3200.00,3250.00,50.00\n"
    );

    // November: ana plans 1000, commits 900 (gap −100), has 300 won, no pipeline;
    // ben plans 2000, no commit, 1000 open at 40%: forecast 400 (gap −1600).
    let gap = ok(run(&data, &["plan", "gap", "--format", "csv"]));
    assert_eq!(
        gap,
        "rep,team,plan,commit,commit_gap,actual,forecast,forecast_gap\n\
         ana,north,1000.00,900.00,-100.00,300.00,300.00,-700.00\n\
         TEAM,north,1000.00,900.00,-100.00,300.00,300.00,-700.00\n\
         ben,south,2000.00,,,0.00,400.00,-1600.00\n\
         TEAM,south,2000.00,,,0.00,400.00,-1600.00\n\
         ORG,,3000.00,900.00,-2100.00,300.00,700.00,-2300.00\n"
    );
    // In JSON an absent value is null, not "".
    let gap = json_of(&data, &["plan", "gap", "--format", "json"]);
    assert_eq!(gap[2]["rep"], "ben");
    assert_eq!(gap[2]["commit"], Value::Null);
    assert_eq!(gap[2]["commit_gap"], Value::Null);
    assert_eq!(gap[4]["team"], Value::Null);
    assert_eq!(gap[0]["commit"], "900.00");
    let diff = json_of(&data, &["plan", "diff", "1", "2", "--format", "json"]);
    assert_eq!(diff[0]["from"], "1100.00");
    assert_eq!(diff[0]["to"], "1200.00");
}

#[test]
fn amounts_in_other_currencies_count_at_their_months_rate_and_splits_add_up() {
    let (tmp, data) = temp_org(EUR);
    let events = r#"{"event_id":"fx-usd-11","source":"finance","occurred_at":"2026-11-01T08:00:00Z","type":"fx_rate_set","currency":"USD","month":"2026-11","rate":"0.9234"}
{"event_id":"w1","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"deal_won","rep":"ana","deal":"d1","account":"acme","customer_kind":"new","amount":"1000.01","currency":"USD","closed_on":"2026-11-05","splits":[{"rep":"ana","percent":"33.33"},{"rep":"ben","percent":"66.67"}]}
{"event_id":"w2","source":"crm","occurred_at":"2026-12-02T10:00:00Z","type":"deal_won","rep":"ana","deal":"d2","account":"acme","customer_kind":"new","amount":"50","currency":"USD","closed_on":"2026-12-02"}
{"event_id":"w3","source":"crm","occurred_at":"2026-11-06T10:00:00Z","type":"renewed","rep":"ana","account":"beta","amount":"1000","currency":"JPY","effective_on":"2026-11-06"}
"#;
    std::fs::write(tmp.path().join("fx.jsonl"), events).unwrap();
    let o = run(&data, &["ingest", "fx.jsonl"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o).trim(), "accepted 2, duplicate 0, rejected 2");
    let err = stderr(&o);
    assert!(
        err.contains("fx.jsonl:3: currency: \"USD\" is not the reporting currency \"EUR\", and no fx_rate_set gives its rate for 2026-12"),
        "{err}"
    );
    assert!(err.contains("fx.jsonl:4: currency: \"JPY\""), "{err}");
    // 1000.01 USD × 0.9234 = 923.409234 → 923.41 EUR (92 341 cents), split 33.33 /
    // 66.67: 30 777.2553 and 61 563.7447 cents; the leftover cent goes to the larger
    // remainder: ana 307.77, ben 615.64, together exactly the deal.
    let rows = json_of(
        &data,
        &[
            "report", "--month", "2026-11", "--bucket", "total", "--format", "json",
        ],
    );
    let actual: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rep"].as_str().unwrap(), r["actual"].as_str().unwrap()))
        .collect();
    assert_eq!(actual, [("ana", "307.77"), ("ben", "615.64")]);
    // With a rate for December (and for JPY), the rejected lines go in.
    let more = r#"{"event_id":"fx-usd-12","source":"finance","occurred_at":"2026-12-01T08:00:00Z","type":"fx_rate_set","currency":"USD","month":"2026-12","rate":"0.95"}
{"event_id":"fx-jpy-11","source":"finance","occurred_at":"2026-11-01T08:00:00Z","type":"fx_rate_set","currency":"JPY","month":"2026-11","rate":"0.0061"}
"#;
    std::fs::write(tmp.path().join("rates.jsonl"), more).unwrap();
    ok(run(&data, &["ingest", "rates.jsonl"]));
    let o = run(&data, &["ingest", "fx.jsonl"]);
    assert_eq!(stdout(&o).trim(), "accepted 2, duplicate 2, rejected 0");
    let dec = json_of(
        &data,
        &[
            "report", "--month", "2026-12", "--rep", "ana", "--bucket", "total", "--format", "json",
        ],
    );
    // 50 USD × 0.95 = 47.50 EUR.
    assert_eq!(dec[0]["actual"], "47.50");
    let nov = json_of(
        &data,
        &[
            "report",
            "--month",
            "2026-11",
            "--rep",
            "ana",
            "--bucket",
            "retention",
            "--format",
            "json",
        ],
    );
    // ¥1000 × 0.0061 = 6.10 EUR.
    assert_eq!(nov[0]["actual"], "6.10");
}

/// One plan line: (rep, month, bucket, minor units or count).
type Row = (String, String, String, i64);

/// Parses a plan CSV into rows.
fn plan_rows(csv: &str, digits: u32) -> Vec<Row> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let scale = if f[2].starts_with("activity:") {
                0
            } else {
                digits
            };
            let (int, frac) = f[3].split_once('.').unwrap_or((f[3], ""));
            let minor = int.parse::<i64>().unwrap() * 10i64.pow(scale)
                + if frac.is_empty() {
                    0
                } else {
                    frac.parse::<i64>().unwrap()
                };
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned(), minor)
        })
        .collect()
}

#[test]
fn a_drafted_plan_adds_up_at_every_level_and_round_trips_through_publish() {
    // Awkward totals: a prime number of yen, a prime number of cents; 7 reps.
    for (currency, digits, target, minor) in [
        ("JPY", 0, "1000003", 1_000_003i64),
        ("EUR", 2, "9999.83", 999_983),
    ] {
        let (tmp, data) = temp_org(&format!("[org]\ncurrency = \"{currency}\"\n"));
        demo(&data, &["--reps", "7", "--seed", "5"]);
        let out = ok(run(
            &data,
            &[
                "plan",
                "draft",
                "--start",
                "2026-12",
                "--target",
                target,
                "--ramp",
                "25,50,75,100",
                "--out",
                "draft.csv",
            ],
        ));
        assert!(
            out.contains(&format!(
                ": {target} {currency} over 24 months from 2026-12 for 7 reps"
            )),
            "{out}"
        );
        let csv = std::fs::read_to_string(tmp.path().join("draft.csv")).unwrap();
        let rows = plan_rows(&csv, digits);
        let sum =
            |f: &dyn Fn(&Row) -> bool| -> i64 { rows.iter().filter(|r| f(r)).map(|r| r.3).sum() };
        assert_eq!(
            sum(&|r| r.2 == "total"),
            minor,
            "{currency}: the months add up to the target"
        );
        let cells: std::collections::BTreeSet<(String, String)> =
            rows.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
        assert_eq!(cells.len(), 7 * 24, "{currency}: every rep has every month");
        for (rep, month) in &cells {
            let of = |f: &dyn Fn(&str) -> bool| sum(&|r| r.0 == *rep && r.1 == *month && f(&r.2));
            let total = of(&|b| b == "total");
            assert_eq!(
                of(&|b| b == "new_customer" || b == "retention"),
                total,
                "{rep} {month}"
            );
            assert_eq!(of(&|b| b.starts_with("geo:")), total, "{rep} {month} geo");
            assert_eq!(
                of(&|b| b.starts_with("product:")),
                total,
                "{rep} {month} product"
            );
        }
        // Published as it is, the report shows the same targets.
        ok(run(
            &data,
            &[
                "plan",
                "publish",
                "draft.csv",
                "--plan",
                "fy27",
                "--version",
                "1",
                "--effective-from",
                "2026-12",
            ],
        ));
        let report = json_of(&data, &["report", "--month", "2027-03", "--format", "json"]);
        for r in report.as_array().unwrap() {
            let (rep, bucket) = (r["rep"].as_str().unwrap(), r["bucket"].as_str().unwrap());
            let drafted = rows
                .iter()
                .find(|d| d.0 == rep && d.1 == "2027-03" && d.2 == bucket)
                .map_or(0, |d| d.3);
            let scale = if bucket.starts_with("activity:") {
                0
            } else {
                digits
            };
            let plan: Vec<&str> = r["plan"].as_str().unwrap().split('.').collect();
            let planned = plan[0].parse::<i64>().unwrap() * 10i64.pow(scale)
                + plan.get(1).map_or(0, |f| f.parse::<i64>().unwrap());
            assert_eq!(planned, drafted, "{currency} {rep} {bucket}");
        }
    }
}

/// A drafted file whose `total` line of one rep and month is raised by 1.00: every
/// rule it breaks is reported at that line's row, column target, naming the part
/// lines it disagrees with, in the documented `FILE: row R, column C: ...` form.
#[test]
fn a_total_raised_by_a_cent_is_blamed_on_its_own_row() {
    let (tmp, data) = temp_org(EUR);
    demo(&data, &["--reps", "3", "--seed", "5"]);
    ok(run(
        &data,
        &[
            "plan",
            "draft",
            "--start",
            "2026-12",
            "--months",
            "2",
            "--target",
            "90000",
            "--out",
            "draft.csv",
        ],
    ));
    let csv = std::fs::read_to_string(tmp.path().join("draft.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    // The last total line of the file (rows are the file's lines, the header is 1).
    let at = lines
        .iter()
        .rposition(|l| l.split(',').nth(2) == Some("total"))
        .unwrap();
    let row = at + 1;
    let cells: Vec<&str> = lines[at].split(',').collect();
    let (rep, month, unit) = (
        cells[0].to_owned(),
        cells[1].to_owned(),
        cells[4].to_owned(),
    );
    // Exact decimals: the target in cents, plus 100.
    let (units, cents) = cells[3].split_once('.').unwrap();
    let minor: i64 = format!("{units}{cents}").parse::<i64>().unwrap() + 100;
    let raised = format!("{}.{:02}", minor / 100, minor % 100);
    lines[at] = format!("{rep},{month},total,{raised},{unit}");
    // The part lines of that rep and month, by kind.
    let parts = |f: &dyn Fn(&str) -> bool| -> Vec<usize> {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                let c: Vec<&str> = l.split(',').collect();
                c.len() == 5 && c[0] == rep && c[1] == month && f(c[2])
            })
            .map(|(i, _)| i + 1)
            .collect()
    };
    let halves = parts(&|b| b == "new_customer" || b == "retention");
    let products = parts(&|b| b.starts_with("product:"));
    assert!(!halves.is_empty() && !products.is_empty(), "{csv}");
    std::fs::write(tmp.path().join("raised.csv"), lines.join("\n") + "\n").unwrap();
    let o = run(
        &data,
        &[
            "plan",
            "publish",
            "raised.csv",
            "--plan",
            "fy28",
            "--version",
            "1",
            "--effective-from",
            "2026-12",
            "--horizon-start",
            "2026-12",
            "--basis",
            "top_down",
        ],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    let rows = |r: &[usize]| {
        let list: Vec<String> = r.iter().map(ToString::to_string).collect();
        format!(
            "{} {}",
            if r.len() == 1 { "row" } else { "rows" },
            list.join(", ")
        )
    };
    let prefix =
        format!("raised.csv: row {row}, column target: {rep}, {month}: total is {raised} but ");
    for (what, r) in [
        ("new_customer + retention", &halves),
        ("the product:* lines", &products),
    ] {
        let want = format!("{prefix}{what} ({})", rows(r));
        assert!(err.lines().any(|l| l.starts_with(&want)), "{want}\n{err}");
    }
    // Every problem is at the raised line: no other row is blamed.
    for l in err.lines().filter(|l| l.starts_with("raised.csv: ")) {
        assert!(
            l.starts_with(&format!("raised.csv: row {row}, column target: ")),
            "{err}"
        );
    }
}

#[test]
fn a_draft_refuses_totals_and_growth_beyond_reason_without_panicking() {
    let (_tmp, data) = setup();
    for (args, needle) in [
        (
            ["--target", "10000000000000000.01"],
            "over the 1000000000000000000 minor units",
        ),
        (["--growth", "2000000"], "outside -100% to 1 000 000%"),
    ] {
        let mut all = vec!["plan", "draft", "--start", "2026-12"];
        all.extend_from_slice(&args);
        let o = run(&data, &all);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
}

#[test]
fn a_seasonality_file_must_give_twelve_months_summing_to_100() {
    let (tmp, data) = setup();
    std::fs::write(
        tmp.path().join("season.csv"),
        "month,percent\n1,10\n2,10\n3,10\n4,10\n5,10\n6,10\n7,10\n8,10\n9,5\n10,5\n11,5\n12,4.99\n",
    )
    .unwrap();
    let o = run(
        &data,
        &[
            "plan",
            "draft",
            "--start",
            "2026-12",
            "--target",
            "1000",
            "--seasonality",
            "season.csv",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the percentages sum to 99.99, not 100"),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        tmp.path().join("season.csv"),
        "month,percent\n1,10\n2,10\n3,10\n4,10\n5,10\n6,10\n7,10\n8,10\n9,5\n10,5\n11,5\n12,5\n",
    )
    .unwrap();
    let out = ok(run(
        &data,
        &[
            "plan",
            "draft",
            "--start",
            "2027-01",
            "--months",
            "12",
            "--target",
            "1000",
            "--seasonality",
            "season.csv",
            "--allocate",
            "even",
        ],
    ));
    let rows = plan_rows(&out, 2);
    // January: 10% of 1000.00 = 100.00, shared evenly by ana and ben.
    let jan: Vec<i64> = rows
        .iter()
        .filter(|r| r.1 == "2027-01" && r.2 == "total")
        .map(|r| r.3)
        .collect();
    assert_eq!(jan, [5_000, 5_000]);
}

#[test]
fn a_drafted_workbook_reads_back_as_the_csv_and_the_report_exports_a_sheet_per_month() {
    let (tmp, data) = temp_org(EUR);
    demo(&data, &["--reps", "4", "--seed", "9"]);
    let draft = [
        "plan", "draft", "--start", "2026-12", "--months", "3", "--growth", "7.5", "--out",
    ];
    let mut csv_args = draft.to_vec();
    csv_args.push("d.csv");
    let mut xlsx_args = draft.to_vec();
    xlsx_args.push("d.xlsx");
    ok(run(&data, &csv_args));
    ok(run(&data, &xlsx_args));
    // The workbook, published, is exactly the CSV. Three months over the demo's
    // 24-month plan: the months after them lose their plan, knowingly.
    ok(run(
        &data,
        &[
            "plan",
            "publish",
            "d.xlsx",
            "--plan",
            "fy27",
            "--version",
            "1",
            "--effective-from",
            "2026-12",
            "--allow-dropped",
        ],
    ));
    let shown = ok(run(&data, &["plan", "show"]));
    assert_eq!(
        shown,
        std::fs::read_to_string(tmp.path().join("d.csv")).unwrap()
    );

    // The report workbook: one sheet per month; each sheet's figures are the CSV's.
    let out = ok(run(
        &data,
        &[
            "report", "--format", "xlsx", "--out", "r.xlsx", "--team", "north",
        ],
    ));
    assert!(out.contains("wrote r.xlsx"), "{out}");
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(tmp.path().join("r.xlsx")).unwrap();
    let names = book.sheet_names();
    assert!(
        names.contains(&"2026-11".to_owned()) && names.contains(&"2027-02".to_owned()),
        "{names:?}"
    );
    let sheet = book.worksheet_range("2026-11").unwrap();
    let csv = ok(run(
        &data,
        &[
            "report", "--format", "csv", "--team", "north", "--month", "2026-11",
        ],
    ));
    let mut rows = sheet.rows().skip(1);
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let cells = rows.next().expect("a row per CSV line");
        assert_eq!(cells[0].to_string(), f[0]);
        assert_eq!(cells[2].to_string(), f[3], "bucket");
        // plan and actual: the cell's shortest decimal is the exact figure.
        for (cell, text) in [(&cells[3], f[4]), (&cells[4], f[5])] {
            let trimmed = if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.')
            } else {
                text
            };
            assert_eq!(cell.to_string(), trimmed, "{line}");
        }
    }
    assert!(rows.next().is_none());
}

/// A version of 10 000 reps × 14 lines (140 000 lines, over the 100 000 one event
/// holds) published in two parts, by team: every rep has their plan, whichever part
/// came first; a part that plans a rep's month differently from another part is
/// refused and names it.
#[test]
fn a_plan_of_ten_thousand_reps_is_published_in_parts_and_every_rep_keeps_a_plan() {
    let (tmp, data) = temp_org(EUR);
    let dir = tmp.path();
    let reps: Vec<String> = (0..10_000).map(|i| format!("r{i:05}")).collect();
    let team = |i: usize| if i < 5_000 { "north" } else { "south" };
    let mut jsonl = String::new();
    for (i, r) in reps.iter().enumerate() {
        jsonl.push_str(&format!(
            "{{\"event_id\":\"reg-{r}\",\"source\":\"hris\",\"occurred_at\":\"2026-10-01T08:00:00Z\",\"type\":\"rep_registered\",\"rep\":\"{r}\",\"name\":\"{r}\",\"team\":\"{}\",\"manager\":\"m\"}}\n",
            team(i)
        ));
    }
    std::fs::write(dir.join("reps.jsonl"), jsonl).unwrap();
    ok(run(&data, &["ingest", "reps.jsonl"]));
    // 14 lines a rep: total 1 000.00 + i cents, new 60%/retention the rest, two
    // regions, five products, four activity targets.
    let lines_of = |i: usize, r: &str| -> String {
        let total = 100_000 + i as i64;
        let cents = |v: i64| format!("{}.{:02}", v / 100, v % 100);
        let new = total * 6 / 10;
        let emea = total / 2;
        let p = total / 5;
        let mut out = format!(
            "{r},2026-11,total,{}\n{r},2026-11,new_customer,{}\n{r},2026-11,retention,{}\n\
             {r},2026-11,geo:emea,{}\n{r},2026-11,geo:us,{}\n",
            cents(total),
            cents(new),
            cents(total - new),
            cents(emea),
            cents(total - emea)
        );
        for k in 0..5 {
            let v = if k == 4 { total - 4 * p } else { p };
            out.push_str(&format!("{r},2026-11,product:p{k},{}\n", cents(v)));
        }
        for kind in ["call", "meeting", "demo", "email"] {
            out.push_str(&format!("{r},2026-11,activity:{kind},10\n"));
        }
        out
    };
    let header = "rep,month,bucket,target\n";
    let (mut north, mut south, mut whole) =
        (header.to_owned(), header.to_owned(), header.to_owned());
    for (i, r) in reps.iter().enumerate() {
        let l = lines_of(i, r);
        whole.push_str(&l);
        if i < 5_000 {
            north.push_str(&l)
        } else {
            south.push_str(&l)
        }
    }
    std::fs::write(dir.join("whole.csv"), &whole).unwrap();
    std::fs::write(dir.join("north.csv"), &north).unwrap();
    std::fs::write(dir.join("south.csv"), &south).unwrap();
    let publish_part = |file: &str, part: Option<&str>| {
        let mut args = vec![
            "plan",
            "publish",
            file,
            "--plan",
            "fy27",
            "--version",
            "1",
            "--effective-from",
            "2026-11",
        ];
        if let Some(p) = part {
            args.extend(["--part", p]);
        }
        run(&data, &args)
    };
    // The whole file is over what one event holds, and says what to do.
    let o = publish_part("whole.csv", None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("140000 lines is over the 100000") && stderr(&o).contains("--part"),
        "{}",
        stderr(&o)
    );
    // South first, then north: both halves are in force.
    assert!(ok(publish_part("south.csv", Some("south"))).contains("70000 lines"));
    assert!(ok(publish_part("north.csv", Some("north"))).contains("70000 lines"));
    let report = ok(run(
        &data,
        &[
            "report", "--month", "2026-11", "--bucket", "total", "--format", "csv",
        ],
    ));
    let rows: Vec<&str> = report.lines().skip(1).collect();
    assert_eq!(rows.len(), 10_000, "every rep has a row");
    let columns: Vec<&str> = report.lines().next().unwrap().split(',').collect();
    let (rep_col, plan_col) = (
        columns.iter().position(|h| *h == "rep").unwrap(),
        columns.iter().position(|h| *h == "plan").unwrap(),
    );
    for row in &rows {
        let cells: Vec<&str> = row.split(',').collect();
        let i: i64 = cells[rep_col][1..].parse().unwrap();
        let want = format!("{}.{:02}", (100_000 + i) / 100, (100_000 + i) % 100);
        assert_eq!(cells[plan_col], want, "{row}");
    }
    // A third part that plans r00007 differently is refused, naming it.
    std::fs::write(
        dir.join("fix.csv"),
        format!("{header}r00007,2026-11,total,5.00\n"),
    )
    .unwrap();
    let o = publish_part("fix.csv", Some("fix"));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("1 rep-month of this file is already planned differently by another part of plan fy27 version 1: r00007 2026-11"),
        "{}",
        stderr(&o)
    );
    let history = json_of(&data, &["plan", "history", "--format", "json"]);
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    // Both parts are wholly in force.
    for v in history.as_array().unwrap() {
        assert_eq!(v["total"], v["in_force"], "{v}");
    }
}

/// A revision that leaves out a rep or lines in force from its effective month on is
/// refused, naming them, unless `--allow-dropped` says so.
#[test]
fn a_revision_that_drops_plans_in_force_names_them_and_needs_allow_dropped() {
    let (tmp, data) = setup();
    ok(publish(&data, "v1.csv", "1", "2026-11", "top_down"));
    // From December, ana only: ben's December would have no plan.
    std::fs::write(
        tmp.path().join("v2.csv"),
        "rep,month,bucket,target\nana,2026-12,total,1200.00\n",
    )
    .unwrap();
    let o = refused(&data, &publish_args("v2.csv", "2", "2026-12", "revision"));
    let err = stderr(&o);
    assert!(
        err.contains("from 2026-12 this version governs every month to 2028-10")
            && err.contains("1 rep-month in force would have no plan (ben 2026-12)")
            && err.contains("--allow-dropped"),
        "{err}"
    );
    let mut args = publish_args("v2.csv", "2", "2026-12", "revision");
    args.push("--allow-dropped");
    ok(run(&data, &args));
    // From November again, without ana's November breakdown and activity target.
    std::fs::write(
        tmp.path().join("v3.csv"),
        "rep,month,bucket,target\nana,2026-11,total,1000.00\nben,2026-11,total,2000.00\nana,2026-12,total,1200.00\n",
    )
    .unwrap();
    let o = publish(&data, "v3.csv", "3", "2026-11", "revision");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("3 lines in force would be dropped (ana 2026-11 activity:call, ana 2026-11 new_customer, ana 2026-11 retention)"),
        "{err}"
    );
}

/// The approval cycle: a submitted version is not in force until another finance
/// user approves it; a rejected one never is; the history says who and how.
#[test]
fn a_submitted_plan_is_in_force_only_once_another_finance_user_approves_it() {
    let (tmp, data) = setup();
    for (user, role) in [("fin", "finance"), ("cfo", "finance"), ("maria", "manager")] {
        ok(run(&data, &["user", "add", user, "--role", role]));
    }
    ok(publish(&data, "v1.csv", "1", "2026-11", "top_down"));
    let dec_plan = |rep: &str| -> String {
        let rows = json_of(
            &data,
            &[
                "report", "--month", "2026-12", "--rep", rep, "--bucket", "total", "--format",
                "json",
            ],
        );
        rows[0]["plan"].as_str().unwrap().to_owned()
    };
    let file = |name: &str, ana: &str| {
        std::fs::write(
            tmp.path().join(name),
            format!(
                "rep,month,bucket,target\nana,2026-12,total,{ana}\nben,2026-12,total,2050.00\n"
            ),
        )
        .unwrap();
    };
    let submit = |name: &str, version: &str, by: &str| {
        run(
            &data,
            &[
                "plan",
                "submit",
                name,
                "--plan",
                "fy27",
                "--version",
                version,
                "--effective-from",
                "2026-12",
                "--horizon-start",
                "2026-11",
                "--basis",
                "revision",
                "--as",
                by,
                "--method",
                "by hand, from the regional targets",
            ],
        )
    };
    let decide = |what: &str, version: &str, by: &str, reason: Option<&str>| {
        let mut args = vec![
            "plan",
            what,
            "--plan",
            "fy27",
            "--version",
            version,
            "--as",
            by,
        ];
        if let Some(r) = reason {
            args.extend(["--reason", r]);
        }
        run(&data, &args)
    };
    let review_of = |version: &str| -> (String, String, String) {
        let h = json_of(&data, &["plan", "history", "--format", "json"]);
        let v = h
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == version)
            .unwrap()
            .clone();
        let text = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        (text("review"), text("method"), text("in_force"))
    };

    file("v2.csv", "1200.00");
    let out = ok(submit("v2.csv", "2", "fin"));
    assert!(out.contains("not in force until approved"), "{out}");
    assert_eq!(dec_plan("ana"), "1100.00", "v1 still governs December");
    assert_eq!(
        review_of("2"),
        (
            "submitted by fin, awaiting approval".into(),
            "by hand, from the regional targets".into(),
            "0.00".into()
        )
    );
    // Four eyes: not the submitter; not a manager.
    let o = decide("approve", "2", "fin", None);
    assert!(
        !o.status.success() && stderr(&o).contains("four eyes"),
        "{}",
        stderr(&o)
    );
    let o = decide("approve", "2", "maria", None);
    assert!(
        !o.status.success() && stderr(&o).contains("a manager user may not"),
        "{}",
        stderr(&o)
    );
    assert_eq!(dec_plan("ana"), "1100.00");
    assert!(ok(decide("approve", "2", "cfo", None)).contains("plan fy27 version 2 approved by cfo"));
    assert_eq!(dec_plan("ana"), "1200.00", "approved: in force");
    assert_eq!(review_of("2").0, "approved by cfo (submitted by fin)");
    assert_eq!(review_of("2").2, "3250.00");
    let shown = run(&data, &["plan", "show", "--version", "2"]);
    assert!(
        stderr(&shown).contains("plan fy27 version 2: approved (submitted by fin, approved by cfo); method: by hand, from the regional targets"),
        "{}",
        stderr(&shown)
    );
    let shown = json_of(
        &data,
        &["plan", "show", "--version", "2", "--format", "json"],
    );
    assert_eq!(
        (shown["status"].as_str(), shown["approved_by"].as_str()),
        (Some("approved"), Some("cfo"))
    );
    let o = decide("approve", "2", "cfo", None);
    assert!(stderr(&o).contains("is already approved"), "{}", stderr(&o));
    // An approved version does not change.
    file("v2b.csv", "1250.00");
    let o = submit("v2b.csv", "2", "fin");
    assert!(
        stderr(&o).contains("version 2 is approved: submit the new figures as version 3"),
        "{}",
        stderr(&o)
    );

    // Version 3, rejected: never in force, and not to be reused.
    file("v3.csv", "1300.00");
    ok(submit("v3.csv", "3", "fin"));
    assert!(ok(decide("reject", "3", "cfo", Some("EMEA is too high"))).contains("rejected by cfo"));
    assert_eq!(dec_plan("ana"), "1200.00");
    assert_eq!(
        review_of("3").0,
        "rejected by cfo: EMEA is too high (submitted by fin)"
    );
    let o = submit("v3.csv", "3", "fin");
    assert!(
        stderr(&o).contains("was rejected: submit the new figures as version 4"),
        "{}",
        stderr(&o)
    );
    let audit = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"plan.approve\"") && audit.contains("\"plan.reject\""),
        "{audit}"
    );
}
