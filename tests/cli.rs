//! The `pacer` command end to end, as a user runs it: given events in, the expected
//! report out. Expected figures are worked out by hand in the comments.

mod common;

use common::*;
use serde_json::{json, Value};

/// A small November 2026 in EUR: a plan, a won deal, an open deal, an activity, a
/// rep nobody registered, and a tick on Wednesday the 18th.
const SCENARIO: &str = r#"{"event_id":"r-ana","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"ana","name":"Ana Silva","team":"north","manager":"maria","region":"emea"}
{"event_id":"fy27-v1","source":"finance","occurred_at":"2026-10-20T08:00:00Z","type":"plan_published","plan":"fy27","version":1,"basis":"top_down","horizon_start":"2026-11","effective_from":"2026-11","currency":"EUR","lines":[{"rep":"ana","month":"2026-11","bucket":"total","target":"100000"},{"rep":"ana","month":"2026-11","bucket":"activity:meeting","target":"40"},{"rep":"ana","month":"2026-12","bucket":"total","target":"90000.50"}]}
{"event_id":"hs-9911","source":"hubspot","occurred_at":"2026-11-03T10:00:00Z","type":"deal_won","rep":"ana","deal":"d-17","account":"acme","customer_kind":"new","product":"analytics","region":"emea","amount":"12500.00","currency":"EUR","closed_on":"2026-11-03"}
{"event_id":"hs-9912","source":"hubspot","occurred_at":"2026-11-04T10:00:00Z","type":"deal_opened","rep":"ana","deal":"d-18","account":"beta","customer_kind":"existing","product":"platform","amount":10000,"currency":"EUR","expected_close":"2026-11-25","probability":25}
{"event_id":"hs-9913","source":"hubspot","occurred_at":"2026-11-05T10:00:00Z","type":"activity_logged","rep":"ana","kind":"meeting","account":"acme"}
{"event_id":"pd-1","source":"pipedrive","occurred_at":"2026-11-06T10:00:00Z","type":"renewed","rep":"zed","account":"omega","amount":"300.50","currency":"EUR","effective_on":"2026-11-06"}
{"event_id":"t-1","source":"pacer","occurred_at":"2026-11-18T09:00:00Z","type":"clock_tick"}
"#;

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, data) = temp_org(EUR);
    std::fs::write(tmp.path().join("events.jsonl"), SCENARIO).unwrap();
    (tmp, data)
}

fn report_json(data: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["report", "--format", "json"];
    all.extend_from_slice(args);
    json_of(data, &all).as_array().unwrap().clone()
}

#[test]
fn report_shows_plan_actual_pace_and_forecast() {
    let (_tmp, data) = setup();
    let out = ok(run(&data, &["ingest", "events.jsonl"]));
    assert_eq!(out.trim(), "accepted 7, duplicate 0, rejected 0");

    let rows = report_json(&data, &["--rep", "ana"]);
    let buckets: Vec<&str> = rows.iter().map(|r| r["bucket"].as_str().unwrap()).collect();
    // Sorted by bucket name; every bucket with a plan line or a non-zero actual.
    assert_eq!(
        buckets,
        [
            "account:acme",
            "activity:meeting",
            "geo:emea",
            "new_customer",
            "product:analytics",
            "total"
        ]
    );
    let total = rows.iter().find(|r| r["bucket"] == "total").unwrap();
    // November 2026 has 21 working days; Wednesday the 18th is the 13th.
    // expected = 100000.00 × 13/21 = 61904.7619… → 61904.76; pace gap = 12500 − 61904.76.
    // forecast = 12500 + 10000 × 25% = 15000.00. With no months of history the
    // expected share is the straight line: `pace_curve` says so.
    assert_eq!(
        total,
        &json!({"rep": "ana", "team": "north", "month": "2026-11", "bucket": "total",
                "plan": "100000.00", "actual": "12500.00", "variance": "-87500.00", "attainment": 0.125,
                "expected_to_date": "61904.76", "pace_gap": "-49404.76", "forecast": "15000.00",
                "pace_curve": "linear", "currency": "EUR"})
    );
    let meetings = rows
        .iter()
        .find(|r| r["bucket"] == "activity:meeting")
        .unwrap();
    // 40 × 13/21 = 24.76 → 25 expected meetings; activities have no forecast.
    assert_eq!(
        meetings,
        &json!({"rep": "ana", "team": "north", "month": "2026-11", "bucket": "activity:meeting",
                "plan": "40", "actual": "1", "variance": "-39", "attainment": 0.025,
                "expected_to_date": "25", "pace_gap": "-24", "forecast": null,
                "pace_curve": "linear", "currency": "EUR"})
    );
    let fields: Vec<&String> = total.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "rep",
            "team",
            "month",
            "bucket",
            "plan",
            "actual",
            "variance",
            "attainment",
            "expected_to_date",
            "pace_gap",
            "forecast",
            "pace_curve",
            "currency"
        ]
    );
    // The open deal is forecast in its own buckets too, though nothing was won there.
    let geo = rows.iter().find(|r| r["bucket"] == "geo:emea").unwrap();
    assert_eq!(
        geo["forecast"], "12500.00",
        "the open deal has no region, so it is forecast under geo:unassigned"
    );

    // A rep nobody registered is reported under team "unassigned"; no plan → null attainment.
    let zed = report_json(&data, &["--rep", "zed", "--bucket", "retention"]);
    assert_eq!(zed.len(), 1);
    assert_eq!(zed[0]["team"], "unassigned");
    assert_eq!(zed[0]["actual"], "300.50");
    assert_eq!(zed[0]["attainment"], Value::Null);

    // A past month: no pace, no forecast.
    let dec = report_json(&data, &["--month", "2026-12", "--rep", "ana"]);
    assert_eq!(dec.len(), 1);
    assert_eq!(dec[0]["plan"], "90000.50");
    assert_eq!(dec[0]["actual"], "0.00");
    assert_eq!(dec[0]["expected_to_date"], Value::Null);
    assert_eq!(dec[0]["forecast"], Value::Null);

    // Team filter.
    assert!(report_json(&data, &["--team", "north"])
        .iter()
        .all(|r| r["rep"] == "ana"));
    assert!(report_json(&data, &["--team", "unassigned"])
        .iter()
        .all(|r| r["rep"] == "zed"));
}

#[test]
fn as_of_seq_reports_from_the_first_n_events() {
    let (_tmp, data) = setup();
    ok(run(&data, &["ingest", "events.jsonl"]));
    // Before the tick (seq 7) there is no current month.
    let o = run(&data, &["report", "--as-of-seq", "6"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--month"), "{}", stderr(&o));
    // Only the plan and registration: actual 0.
    let rows = report_json(
        &data,
        &[
            "--as-of-seq",
            "2",
            "--month",
            "2026-11",
            "--bucket",
            "total",
        ],
    );
    assert_eq!(rows[0]["actual"], "0.00");
    let rows = report_json(
        &data,
        &[
            "--as-of-seq",
            "3",
            "--month",
            "2026-11",
            "--bucket",
            "total",
        ],
    );
    assert_eq!(rows[0]["actual"], "12500.00");
}

#[test]
fn ingest_reports_bad_lines_and_stores_the_good_ones() {
    let (tmp, data) = setup();
    let bad = concat!(
        r#"{"event_id":"a1","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"activity_logged","rep":"ana","kind":"call"}"#,
        "\n",
        r#"{"event_id":"a2","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"deal_won","rep":"ana","deal":"d","account":"x","customer_kind":"new","amount":"12,5","currency":"EUR","closed_on":"2026-11-05"}"#,
        "\n",
        "not json at all\n",
        "\n",
        r#"{"event_id":"a3","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"renewed","rep":"ana","account":"x","amount":"10","currency":"USD","effective_on":"2026-11-05"}"#,
        "\n",
        r#"{"event_id":"a4","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"activity_logged","rep":"ana","kind":"demo"}"#,
        "\n",
        r#"{"event_id":"a1","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"activity_logged","rep":"ana","kind":"call"}"#,
        "\n",
    );
    std::fs::write(tmp.path().join("mixed.jsonl"), bad).unwrap();
    let o = run(&data, &["ingest", "mixed.jsonl"]);
    assert_eq!(o.status.code(), Some(3), "rejected lines exit with 3");
    assert_eq!(stdout(&o).trim(), "accepted 2, duplicate 1, rejected 3");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with("mixed.jsonl:2: amount: \"12,5\" is not an exact amount"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("mixed.jsonl:3: event: not valid JSON"),
        "{err}"
    );
    assert!(
        lines[2]
            .starts_with("mixed.jsonl:5: currency: \"USD\" is not the reporting currency \"EUR\""),
        "{err}"
    );

    let ids: Vec<String> = log_events(&data)
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["a1", "a4"]);

    // Standard input, and a second run: everything already stored is a duplicate.
    let o = run_with_stdin(&data, &["ingest", "-"], bad);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o).trim(), "accepted 0, duplicate 3, rejected 3");
    assert!(stderr(&o).starts_with("-:2: amount:"), "{}", stderr(&o));

    // A clean file exits 0.
    let o = run_with_stdin(&data, &["ingest", "-"], SCENARIO);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn log_exports_every_event_with_seq_and_recorded_at() {
    let (_tmp, data) = setup();
    ok(run(&data, &["ingest", "events.jsonl"]));
    let events = log_events(&data);
    assert_eq!(events.len(), 7);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert!(e["recorded_at"].as_str().unwrap().ends_with('Z'));
    }
    // The export is the public schema: it reads back in as the same events.
    let won = &events[2];
    assert_eq!(won["type"], "deal_won");
    assert_eq!(won["amount"], "12500.00");
    assert_eq!(won["closed_on"], "2026-11-03");
    let page = ok(run(&data, &["log", "--from-seq", "6", "--limit", "1"]));
    let only: Vec<Value> = page
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["event_id"], "pd-1");
}

#[test]
fn tick_moves_the_current_month() {
    let (_tmp, data) = setup();
    ok(run(&data, &["ingest", "events.jsonl"]));
    let out = ok(run(&data, &["tick", "--at", "2026-12-01T09:00:00+01:00"]));
    assert!(out.contains("seq 8"), "{out}");
    let rows = report_json(&data, &["--rep", "ana"]);
    assert!(rows.iter().all(|r| r["month"] == "2026-12"));
    // 1 December 2026 is a Tuesday, the first of 23 working days: 90000.50 × 1/23.
    assert_eq!(rows[0]["expected_to_date"], "3913.07");
    // The same instant ticked again is the same tick.
    let out = ok(run(&data, &["tick", "--at", "2026-12-01T08:00:00Z"]));
    assert!(out.contains("already stored as seq 8"), "{out}");
}

#[test]
fn table_output_is_grouped_by_rep() {
    let (_tmp, data) = setup();
    ok(run(&data, &["ingest", "events.jsonl"]));
    let out = ok(run(&data, &["report"]));
    let ana = out
        .find("ana · team north · 2026-11 · EUR")
        .expect("a heading per rep");
    let zed = out
        .find("zed · team unassigned")
        .expect("a heading per rep");
    assert!(ana < zed);
    assert!(out.contains("100,000.00"), "{out}");
}

#[test]
fn csv_has_a_header_and_empty_nulls() {
    let (_tmp, data) = setup();
    ok(run(&data, &["ingest", "events.jsonl"]));
    let out = ok(run(
        &data,
        &["report", "--format", "csv", "--month", "2026-12"],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "rep,team,month,bucket,plan,actual,variance,attainment,expected_to_date,pace_gap,forecast,pace_curve,currency");
    assert_eq!(
        lines[1],
        "ana,north,2026-12,total,90000.50,0.00,-90000.50,0.0000,,,,,EUR"
    );
}

#[test]
fn bad_config_and_missing_log_are_clear_errors() {
    let (tmp, data) = setup();
    std::fs::write(
        tmp.path().join("pacer.toml"),
        "[org]\ncurrency = \"EUR\"\ntimezone = \"Nowhere/Land\"\n",
    )
    .unwrap();
    let o = run(&data, &["report"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("org.timezone") && stderr(&o).contains("Nowhere/Land"),
        "{}",
        stderr(&o)
    );
    std::fs::write(tmp.path().join("pacer.toml"), "[org]\ncurrncy = \"EUR\"\n").unwrap();
    let o = run(&data, &["report"]);
    assert!(stderr(&o).contains("currncy"), "{}", stderr(&o));
    std::fs::remove_file(tmp.path().join("pacer.toml")).unwrap();
    let o = run(&data, &["report"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no Pacer log"), "{}", stderr(&o));
    // --config may come after the subcommand.
    let o = run(&data, &["report", "--config", "missing.toml"]);
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));
}

#[test]
fn demo_is_deterministic_and_never_overwrites_real_data() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let args = ["--reps", "8", "--seed", "3"];
    let out_a = demo(&a, &args);
    let out_b = demo(&b, &args);
    assert_eq!(
        out_a.replace(a.to_str().unwrap(), "DIR"),
        out_b.replace(b.to_str().unwrap(), "DIR")
    );
    assert!(out_a.contains("Team north"), "{out_a}");
    assert_eq!(ok(run(&a, &["log"])), ok(run(&b, &["log"])));
    let ra = ok(run(&a, &["report", "--format", "json"]));
    assert_eq!(ra, ok(run(&b, &["report", "--format", "json"])));
    // Every rep has a plan and actuals this month; the invariants of the brief hold.
    let rows: Vec<Value> = serde_json::from_str(&ra).unwrap();
    for rep in rows.iter().filter(|r| r["bucket"] == "total") {
        let name = rep["rep"].as_str().unwrap();
        let sum = |prefix: &str| -> i64 {
            rows.iter()
                .filter(|r| r["rep"] == name && r["bucket"].as_str().unwrap().starts_with(prefix))
                .map(|r| {
                    r["actual"]
                        .as_str()
                        .unwrap()
                        .replace('.', "")
                        .parse::<i64>()
                        .unwrap()
                })
                .sum()
        };
        assert_eq!(sum("geo:"), sum("total"), "{name}");
        assert_eq!(sum("product:"), sum("total"), "{name}");
        assert_eq!(
            sum("new_customer") + sum("retention"),
            sum("total"),
            "{name}"
        );
        assert_ne!(rep["plan"], "0.00", "{name}");
    }
    // A demo replaces an earlier demo...
    demo(&a, &args);
    // ...but never a log it did not create.
    let real = tmp.path().join("real");
    std::fs::write(
        tmp.path().join("one.jsonl"),
        SCENARIO.lines().next().unwrap(),
    )
    .unwrap();
    ok(run(&real, &["ingest", "one.jsonl"]));
    let o = run(&real, &["demo", "--reps", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("did not create"), "{}", stderr(&o));
    assert_eq!(log_events(&real).len(), 1);
}

#[test]
fn a_log_keeps_the_currency_it_was_created_with() {
    let (tmp, data) = setup();
    ok(run(&data, &["ingest", "events.jsonl"]));
    std::fs::write(tmp.path().join("jpy.toml"), "[org]\ncurrency = \"JPY\"\n").unwrap();
    for args in [
        &["report", "--config", "jpy.toml"][..],
        &["ingest", "--config", "jpy.toml", "events.jsonl"],
    ] {
        let o = run(&data, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains("org.currency") && err.contains("EUR") && err.contains("JPY"),
            "{err}"
        );
    }
    assert_eq!(
        log_events(&data).len(),
        7,
        "nothing was appended under the wrong currency"
    );
}

#[test]
fn ingest_opens_every_file_before_storing_anything() {
    let (_tmp, data) = setup();
    let o = run(&data, &["ingest", "events.jsonl", "missing.jsonl"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing.jsonl"), "{}", stderr(&o));
    assert!(!data.join("conf").exists() || log_events(&data).is_empty());
}

#[test]
fn a_demo_log_that_received_real_events_is_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    demo(&data, &["--reps", "2"]);
    std::fs::write(
        tmp.path().join("one.jsonl"),
        SCENARIO.lines().next().unwrap().replace("EUR", "USD"),
    )
    .unwrap();
    ok(run(&data, &["ingest", "one.jsonl"]));
    let o = refused(&data, &["demo", "--reps", "2", "--now", DEMO_NOW]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("did not create"), "{}", stderr(&o));
}
