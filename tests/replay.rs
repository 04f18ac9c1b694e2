//! History as of any moment: `--as-of-seq N` equals a fresh log holding only the
//! first N events; `--as-of T` leaves out what was recorded after T even when it is
//! about earlier months; `pacer replay --verify`.

mod common;

use common::*;
use rand::{Rng, SeedableRng};

#[test]
fn a_report_as_of_seq_n_equals_a_log_of_the_first_n_events() {
    let seed = test_seed("as-of", 7);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    demo(&data, &["--reps", "3", "--seed", "3"]);
    let export = ok(run(&data, &["log"]));
    let lines: Vec<&str> = export.lines().collect();
    for round in 0..4 {
        let n = rng.gen_range(1..=lines.len());
        let fresh = tmp.path().join(format!("first-{round}"));
        std::fs::write(tmp.path().join("first.jsonl"), lines[..n].join("\n") + "\n").unwrap();
        ok(run(&fresh, &["ingest", "first.jsonl"]));
        let seq = n.to_string();
        for month in ["2026-10", "2026-11"] {
            let as_of = ok(run(
                &data,
                &[
                    "report",
                    "--as-of-seq",
                    &seq,
                    "--month",
                    month,
                    "--format",
                    "json",
                ],
            ));
            let cut = ok(run(
                &fresh,
                &["report", "--month", month, "--format", "json"],
            ));
            assert_eq!(as_of, cut, "seq {n}, month {month}");
        }
        let as_of = ok(run(
            &data,
            &[
                "alerts",
                "--as-of-seq",
                &seq,
                "--status",
                "all",
                "--format",
                "json",
            ],
        ));
        let cut = ok(run(
            &fresh,
            &["alerts", "--status", "all", "--format", "json"],
        ));
        assert_eq!(as_of, cut, "alerts at seq {n}");
    }
}

#[test]
fn a_report_as_of_a_moment_leaves_out_what_was_recorded_later() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = r#"{"event_id":"fy27","source":"finance","occurred_at":"2026-10-20T08:00:00Z","type":"plan_published","plan":"fy27","version":1,"basis":"top_down","horizon_start":"2026-10","effective_from":"2026-10","currency":"USD","lines":[{"rep":"ana","month":"2026-10","bucket":"total","target":"1000"}]}
{"event_id":"w1","source":"crm","occurred_at":"2026-10-10T10:00:00Z","type":"deal_won","rep":"ana","deal":"d1","account":"a","customer_kind":"new","amount":"400","currency":"USD","closed_on":"2026-10-10"}
"#;
    // Recorded later, but about October: a late-arriving win.
    let second = r#"{"event_id":"w2","source":"crm","occurred_at":"2026-10-12T10:00:00Z","type":"deal_won","rep":"ana","deal":"d2","account":"b","customer_kind":"new","amount":"500","currency":"USD","closed_on":"2026-10-12"}
"#;
    std::fs::write(tmp.path().join("first.jsonl"), first).unwrap();
    std::fs::write(tmp.path().join("second.jsonl"), second).unwrap();
    ok(run(&data, &["ingest", "first.jsonl"]));
    let events = log_events(&data);
    let recorded = events[1]["recorded_at"].as_str().unwrap().to_owned();
    // recorded_at has microseconds: wait until the wall clock is surely past it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    ok(run(&data, &["ingest", "second.jsonl"]));
    let total = |args: &[&str]| -> String {
        let mut all = vec![
            "report", "--month", "2026-10", "--bucket", "total", "--format", "json",
        ];
        all.extend_from_slice(args);
        json_of(&data, &all)[0]["actual"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(total(&["--as-of", &recorded]), "400.00");
    assert_eq!(total(&[]), "900.00");
    let out = ok(run(&data, &["replay", "--to", &recorded, "--verify"]));
    assert!(out.starts_with("replayed 2 events"), "{out}");
    assert!(out.contains("verified: 2 events"), "{out}");
    let out = ok(run(&data, &["replay", "--verify"]));
    assert!(out.starts_with("replayed 3 events"), "{out}");
}

/// The benchmark harness at a small scale, so that it cannot rot: it runs, measures
/// every figure (alert latency under a small background load, memory at scale in a
/// replay process of its own, and the web pages, included), and writes them as JSON
/// with the machine.
#[test]
fn the_bench_harness_runs_at_small_scale() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("unused");
    let out = ok(run(
        &data,
        &[
            "bench",
            "--events",
            "4000",
            "--queries",
            "10",
            "--ingest-events",
            "2000",
            "--alert-probes",
            "5",
            "--alert-reps",
            "10",
            "--background-events-per-s",
            "2000",
            "--reps",
            "3",
            "--web-reps",
            "25",
            "--web-requests",
            "3",
            "--rounds",
            "2",
            "--json",
            "bench.json",
        ],
    ));
    assert!(out.contains("replay (rebuild the projections)"), "{out}");
    assert!(out.contains("alert latency p50 / p99 / max"), "{out}");
    assert!(out.contains("peak RSS, replay of 3 reps"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("bench.json")).unwrap())
            .unwrap();
    assert!(v["events"].as_u64().unwrap() >= 3_000, "{v}");
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    for path in [
        ["replay", "events_per_second"],
        ["replay", "raw_scan_events_per_second"],
        ["replay", "rep_month_bucket_cells"],
        ["memory", "peak_rss_bytes"],
        ["queries", "team_report_us"],
        ["ingest", "durable_events_per_second"],
        ["ingest", "raw_consume_events_per_second"],
    ] {
        let f = &v[path[0]][path[1]];
        assert!(!f.is_null(), "{path:?} missing in {v}");
    }
    assert!(v["replay"]["events_per_second"].as_f64().unwrap() > 0.0);
    // Two rounds of each, the figure their median.
    for rounds in [
        &v["replay"]["rounds"]["events_per_second"],
        &v["replay"]["rounds"]["raw_scan_events_per_second"],
        &v["ingest"]["rounds"]["durable_events_per_second"],
        &v["ingest"]["rounds"]["raw_consume_events_per_second"],
    ] {
        let rounds = rounds
            .as_array()
            .unwrap_or_else(|| panic!("no rounds in {v}"));
        assert_eq!(rounds.len(), 2, "{v}");
        assert!(rounds.iter().all(|r| r.as_f64().unwrap() > 0.0), "{v}");
    }
    // The replay's memory, measured in a process of its own.
    assert!(v["memory"]["peak_rss_bytes"].as_u64().unwrap() > 0, "{v}");
    // Every probe's alert arrived, under a background load that really ran.
    let alerts = &v["alert_latency"];
    assert_eq!(alerts["probes"].as_u64(), Some(5), "{alerts}");
    assert_eq!(alerts["lost"].as_u64(), Some(0), "{alerts}");
    assert_eq!(alerts["not_sent"].as_u64(), Some(0), "{alerts}");
    for key in ["p50_ms", "p99_ms", "max_ms"] {
        assert!(alerts[key].as_f64().unwrap() > 0.0, "{key} in {alerts}");
    }
    assert!(
        alerts["background_events"].as_u64().unwrap() > 0,
        "{alerts}"
    );
    assert_eq!(alerts["target_p99_ms"].as_u64(), Some(25));
    // Memory at scale: the replay process reports its own peak and the cells it held.
    let scale = &v["memory_at_scale"];
    assert_eq!(scale["reps"].as_u64(), Some(3), "{scale}");
    assert!(scale["events"].as_u64().unwrap() > 3_000, "{scale}");
    assert!(scale["peak_rss_bytes"].as_u64().unwrap() > 0, "{scale}");
    assert!(
        scale["rep_month_bucket_cells"].as_u64().unwrap() > 0,
        "{scale}"
    );
    assert!(
        scale["peak_bytes_per_cell"].as_f64().unwrap() > 0.0,
        "{scale}"
    );
    // The web pages, served to the bench team's manager (a refused or failed page
    // would have stopped the bench).
    let web = &v["web"];
    assert_eq!(web["reps"].as_u64(), Some(25), "{web}");
    for page in ["team_page", "rep_page", "inbox", "events_page"] {
        assert!(
            web[page]["p99_ms"].as_f64().unwrap() > 0.0,
            "{page} in {web}"
        );
        assert!(
            web[page]["bytes"].as_u64().unwrap() > 1000,
            "{page} in {web}"
        );
    }
    assert!(out.contains("web: team page, 20 reps of 25"), "{out}");
    // The harness never touches the data dir it was given.
    assert!(!data.exists());
}
